"""FAKE insightface.utils: the pack lookup of insightface/utils/storage.py and constant.py."""

import os

DEFAULT_MP_NAME = "buffalo_l"
BASE_REPO_URL = "https://github.com/deepinsight/insightface/releases/download/v0.7"


class ConnectionError(OSError):  # noqa: A001 - requests.exceptions.ConnectionError, as the real download raises
    pass


ConnectionError.__module__ = "requests.exceptions"


def download(sub_dir, name, force=False, root="~/.insightface"):
    _root = os.path.expanduser(root)
    dir_path = os.path.join(_root, sub_dir, name)
    if os.path.exists(dir_path) and not force:
        return dir_path
    print("download_path:", dir_path)
    zip_file_path = os.path.join(_root, sub_dir, name + ".zip")
    model_url = f"{BASE_REPO_URL}/{name}.zip"
    # download_file(): makes the zip's folder, prints, then requests.get(url, stream=True) fails
    # without the network.
    os.makedirs(os.path.dirname(zip_file_path), exist_ok=True)
    print(f"Downloading {zip_file_path} from {model_url}...")
    raise ConnectionError(
        f"HTTPSConnectionPool(host='github.com', port=443): Max retries exceeded with url: "
        f"/deepinsight/insightface/releases/download/v0.7/{name}.zip (Caused by NameResolutionError("
        f"\"<urllib3.connection.HTTPSConnection object>: Failed to resolve 'github.com' "
        f"([Errno -3] Temporary failure in name resolution)\"))")


def ensure_available(sub_dir, name, root="~/.insightface"):
    return download(sub_dir, name, force=False, root=root)
