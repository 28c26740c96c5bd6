"""Image data at the door: folders, datasets and arrays become ImageData with stratified splits;
bad input is refused with what was found, or adjusted with one warning."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import labkit as lk
from labkit._errors import DataError, LabkitWarning
from labkit.vision import image_block, load_images


def _digits(n_per: int = 10, classes: int = 3, size: int = 8, channels: int = 0) -> tuple:
    rng = np.random.default_rng(0)
    shape = (n_per * classes, size, size) + ((channels,) if channels else ())
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    labels = [str(k) for k in range(classes) for _ in range(n_per)]
    return images, labels


def _save(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _folder(
    root: Path, classes=("cat", "dog"), n: int = 6, size: int = 8, rgb: bool = True
) -> Path:
    rng = np.random.default_rng(1)
    for c in classes:
        for i in range(n):
            shape = (size, size, 3) if rgb else (size, size)
            _save(root / c / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def test_arrays_become_image_data_with_stratified_splits():
    images, labels = _digits(n_per=20, classes=3)
    data = lk.load_data((images, labels), validation_size=0.3, test_size=0.3, seed=0)
    assert isinstance(data, lk.ImageData)
    assert data.labels == ("0", "1", "2")
    assert data.image_size == (8, 8) and data.channels == 1
    assert sum(len(s) for s in data.splits.values()) == 60
    for split in (data.validation, data.test):
        counts = Counter(split["label"]).values()
        assert len(counts) == 3 and max(counts) - min(counts) <= 1  # every class equally
    block = image_block(data.train)
    assert block.dtype == np.uint8 and block.shape[1:] == (8, 8, 1)
    # the same seed gives the same splits
    again = lk.load_data((images, labels), validation_size=0.3, test_size=0.3, seed=0)
    assert np.array_equal(image_block(again.test), image_block(data.test))


def test_arrays_keep_pixels_and_label_names_and_order():
    images, labels = _digits(n_per=4, classes=2)
    data = lk.load_data((images, labels), labels=["1", "0"], task="image-classification")
    assert data.labels == ("1", "0")
    row = data.train[0]
    # a stored image is the input image, its label the name it had
    k = [
        i
        for i in range(len(images))
        if np.array_equal(images[i], np.asarray(row["image"])[:, :, 0])
    ]
    assert k and labels[k[0]] == data.labels[row["label"]]


def test_label_map_renames_and_unknown_label_names_row():
    images, labels = _digits(n_per=4, classes=3)
    data = lk.load_data((images, labels), label_map={"0": "zero", "1": "one", "2": None})
    assert data.labels == ("one", "zero")
    assert sum(len(s) for s in data.splits.values()) == 8  # class "2" dropped
    with pytest.raises(DataError, match=r"row 8 has label '2'.*labels=\['0', '1'\]"):
        lk.load_data((images, labels), labels=["0", "1"])


def test_folder_of_class_subfolders_and_split_folders(tmp_path):
    data = lk.load_data(_folder(tmp_path / "flat", n=6), validation_size=0.25)
    assert data.labels == ("cat", "dog") and data.channels == 3
    assert len(data.train) + len(data.validation) == 12
    root = tmp_path / "split"
    _folder(root / "train", n=5)
    _folder(root / "val", n=2)
    _folder(root / "test", n=2)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # skipped
    data = lk.load_data(root)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 10, "validation": 4, "test": 4}
    assert "cat" in data._repr_html_() and "data:image/png;base64," in data._repr_html_()


def test_html_escapes_label_names():
    images, labels = _digits(n_per=4, classes=2)
    data = lk.load_data((images, ["<b>x</b>" if v == "0" else "y" for v in labels]))
    page = data._repr_html_()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_datasets_source_with_image_feature_and_classlabel(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Image

    folder = _folder(tmp_path / "f", n=4, rgb=False)
    files = sorted(folder.glob("*/*.png"))
    features = Features({"img": Image(), "y": ClassLabel(names=["cat", "dog"])})
    ds = Dataset.from_dict(
        {"img": [str(f) for f in files], "y": [0 if f.parent.name == "cat" else 1 for f in files]},
        features=features,
    )
    # lk.load_data has no image= yet (reported); load_images is what it routes to
    data = load_images(ds, image="img", label="y")
    assert data.labels == ("cat", "dog") and data.channels == 1
    with pytest.raises(DataError, match="no 'label' column, so the labels are missing"):
        load_images(ds.rename_column("y", "z"), image="img")


def test_mixed_sizes_and_channels_are_resized_with_one_warning():
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (8, 8), dtype=np.uint8) for _ in range(6)]
    images += [rng.integers(0, 256, (10, 12, 3), dtype=np.uint8) for _ in range(2)]
    labels = ["a", "b"] * 4
    with pytest.warns(LabkitWarning) as seen:
        data = lk.load_data((images, labels), task="image-classification")
    assert len(seen) == 1
    text = str(seen[0].message)
    assert "2 image(s) of other sizes (10x12) were resized to 8x8" in text
    assert "6 grayscale image(s) were converted to RGB" in text
    assert data.image_size == (8, 8) and data.channels == 3


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ((np.zeros((4, 8, 8), np.uint8), None), "labels are missing"),
        ((np.zeros((4, 8, 8), np.uint8), ["a", "b"]), "4 images but 2 labels"),
        ((np.zeros((6, 8, 8), np.uint8), ["a"] * 6), r"1 class\(es\)"),
        ((np.zeros((6, 8, 8), np.uint8), ["a", None] * 3), "no label"),
    ],
)
def test_bad_arrays_are_refused(source, match):
    with pytest.raises(DataError, match=match):
        lk.load_data(source, task="image-classification")


def test_bad_folders_are_refused(tmp_path):
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="holds no images in class subfolders"):
        lk.load_data(tmp_path / "empty", task="image-classification")
    root = _folder(tmp_path / "broken", n=3)
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"cannot read the image file .*broken\.png"):
        lk.load_data(root)
    one = _folder(tmp_path / "one", classes=("cat",), n=4)
    with pytest.raises(DataError, match="at least two"):
        lk.load_data(one, task="image-classification")
