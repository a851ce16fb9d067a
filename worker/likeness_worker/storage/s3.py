"""S3 (MinIO, AWS, moto) storage through boto3. A PUT is atomic on S3 by design."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import ObjectMissing, Storage, check_key


def _missing(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        force_path_style: bool = True,
    ) -> None:
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": "path" if force_path_style else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> int:
        self.client.upload_file(str(path), self.bucket, check_key(key), ExtraArgs={"ContentType": content_type})
        return Path(path).stat().st_size

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> int:
        self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type)
        return len(data)

    def get_file(self, key: str, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        try:
            self.client.download_file(self.bucket, check_key(key), str(tmp))
        except ClientError as err:
            if _missing(err):
                raise ObjectMissing(key) from None
            raise
        tmp.replace(path)
        return path

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"].read()
        except ClientError as err:
            if _missing(err):
                raise ObjectMissing(key) from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
            return True
        except ClientError as err:
            if _missing(err):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def list(self, prefix: str) -> Iterator[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return iter(sorted(keys))
