"""Object storage behind one interface: a local folder (default) or S3."""

from __future__ import annotations

from ..config import Settings
from .base import ObjectMissing, Storage, check_key
from .local import LocalStorage


def make_storage(settings: Settings) -> Storage:
    if settings.storage_driver == "s3":
        from .s3 import S3Storage

        return S3Storage(
            settings.s3_bucket or "",
            endpoint=settings.s3_endpoint,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None,
            secret_access_key=(
                settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
            ),
            force_path_style=settings.s3_force_path_style,
        )
    return LocalStorage(settings.storage_dir)


__all__ = ["LocalStorage", "ObjectMissing", "Storage", "check_key", "make_storage"]
