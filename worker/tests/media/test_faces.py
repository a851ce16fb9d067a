import tomllib

import cv2
import numpy as np
import pytest

from likeness_worker.media.errors import BadInput
from likeness_worker.media.faces import BLUR_THRESHOLD, MIN_FACE_PX, prepare_faces

from .conftest import write_rgb


@pytest.fixture(scope="module")
def photos(astronaut_rgb, tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    a = astronaut_rgb
    big = cv2.resize(a, (900, 900), interpolation=cv2.INTER_CUBIC)
    ramp = np.linspace(0, 255, 640, dtype=np.uint8)
    gradient = np.dstack([np.tile(ramp, (480, 1))] * 3)
    return {
        "astronaut.jpg": write_rgb(d / "astronaut.jpg", a),
        "astronaut-big-mirrored.png": write_rgb(d / "big.png", np.ascontiguousarray(big[:, ::-1])),
        "group.png": write_rgb(d / "group.png", np.hstack([a, a])),
        "blurred.png": write_rgb(d / "blurred.png", cv2.GaussianBlur(a, (0, 0), 4)),
        "tiny.png": write_rgb(d / "tiny.png", cv2.resize(a, (256, 256), interpolation=cv2.INTER_AREA)),
        "gradient.png": write_rgb(d / "gradient.png", gradient),
        "notes.jpg": _write_bytes(d / "notes.jpg", b"this is not an image"),
        "astronaut-again.jpg": write_rgb(d / "again.jpg", a),
    }


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def result(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    return prepare_faces(list(photos.items()), out, "ohwx")


def _reason(result, name):
    return next(r["reason"] for r in result.rejected if r["name"] == name)


def test_accepts_the_astronaut_with_a_plausible_face_box(result, astronaut_rgb):
    acc = {a["name"]: a for a in result.accepted}
    assert set(acc) == {"astronaut.jpg", "astronaut-big-mirrored.png"}
    box = acc["astronaut.jpg"]["box"]
    # her face is in the upper middle-left of the 512x512 photo, about 100 px across
    assert 150 <= box["x"] <= 200 and 40 <= box["y"] <= 100
    assert MIN_FACE_PX <= box["w"] <= 160 and MIN_FACE_PX <= box["h"] <= 160
    for a in result.accepted:
        crop = cv2.imread(str(a["crop_path"]))
        assert crop.shape == (512, 512, 3)
    # the crop really contains the face: detection on the crop finds one centred face
    from likeness_worker.media.faces import detect_faces

    crop = cv2.cvtColor(cv2.imread(str(acc["astronaut.jpg"]["crop_path"])), cv2.COLOR_BGR2RGB)
    faces = detect_faces(crop)
    assert len(faces) == 1
    cx = faces[0].x + faces[0].w / 2
    assert 180 < cx < 330 and faces[0].w > 180


def test_rejections_say_what_to_fix(result):
    assert _reason(result, "group.png") == "several faces (2) — use photos of one person"
    assert _reason(result, "blurred.png").startswith("too blurry")
    assert _reason(result, "tiny.png").startswith("face too small (")
    assert f"need ≥ {MIN_FACE_PX}" in _reason(result, "tiny.png")
    assert _reason(result, "gradient.png") == "no face found"
    assert "cannot read" in _reason(result, "notes.jpg")
    assert _reason(result, "astronaut-again.jpg") == "same photo as astronaut.jpg"
    assert len(result.accepted) + len(result.rejected) == 8



def test_rejections_carry_the_photos_place(photos, result):
    # Two photos may share a name (IMG_0001.jpg from two phones): the index tells them apart.
    names = list(photos)
    for r in result.rejected:
        assert names[r["index"]] == r["name"]


def test_blur_threshold_separates_sharp_and_blurred(result):
    sharp = {a["name"]: a["sharpness"] for a in result.accepted}
    assert sharp["astronaut.jpg"] > 10 * BLUR_THRESHOLD


def test_kohya_dataset_layout_and_toml(result):
    cfg = tomllib.loads(result.dataset_toml.read_text())
    assert cfg["general"]["caption_extension"] == ".txt"
    ds = cfg["datasets"][0]
    assert ds["resolution"] == 512
    sub = ds["subsets"][0]
    assert sub["class_tokens"] == "ohwx"
    image_dir = result.dataset_toml.parent / sub["image_dir"]
    assert image_dir.is_dir()
    assert image_dir.name == f"{sub['num_repeats']}_ohwx"
    assert image_dir.parent == result.dataset_dir / "img"
    pngs = sorted(image_dir.glob("*.png"))
    assert [p.name for p in pngs] == ["001.png", "002.png"]
    for p in pngs:
        assert p.with_suffix(".txt").read_text().strip() == "ohwx, a photo of a person"
    assert sorted(a["crop_path"] for a in result.accepted) == pngs


def test_portrait_is_the_best_face_at_original_resolution(result):
    # the 900 px copy has the larger face, equally frontal: it wins; kept at 900 px (< 1024)
    img = cv2.imread(str(result.portrait_path))
    assert img.shape[:2] == (900, 900)
    box = result.portrait_face_box
    assert 150 <= box["w"] <= 260
    # mirrored: the face is now right of centre
    assert box["x"] + box["w"] / 2 > 450
    best = [a for a in result.accepted if a["portrait"]]
    assert [a["name"] for a in best] == ["astronaut-big-mirrored.png"]


def test_portrait_is_capped_at_1024(astronaut_rgb, tmp_path):
    big = cv2.resize(astronaut_rgb, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    res = prepare_faces([("big", write_rgb(tmp_path / "big.png", big))], tmp_path / "o", "ohwx")
    assert cv2.imread(str(res.portrait_path)).shape[:2] == (1024, 1024)
    box = res.portrait_face_box
    # twice the 512 px original's box
    assert 300 <= box["x"] <= 400 and 2 * MIN_FACE_PX <= box["w"] <= 320


def test_no_usable_face_is_bad_input_with_reasons(photos, tmp_path):
    with pytest.raises(BadInput, match=r"no usable face in any photo: .*gradient.png: no face found"):
        prepare_faces([("gradient.png", photos["gradient.png"]),
                       ("group.png", photos["group.png"])], tmp_path, "ohwx")


def test_bad_trigger_word(photos, tmp_path):
    with pytest.raises(BadInput, match="trigger word"):
        prepare_faces([("a", photos["astronaut.jpg"])], tmp_path, "../evil")
