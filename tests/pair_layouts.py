"""Tiny, valid copies of the retrieval datasets' layouts, for tests.

Each writer puts under ``root`` the files its dataset class reads (8x8 images, real class names)
and returns ``{pair id: the text the reader should return}``; the texts carry what the real files
carry (Wikipedia: bare ``&``, HTML entities, line breaks; Pascal: padded sentence lines).
"""
import hashlib
import json
import os

from coop_layouts import write_image, write_lines

WIKI_CATEGORIES = ["art", "biology", "geography", "history", "literature", "media", "music", "royalty", "sport",
                   "warfare"]  # category numbers 1..10, written out here independently of the reader
PASCAL_CATEGORIES = ["aeroplane", "diningtable", "sheep", "tvmonitor"]
NUS_CLASSES = ["animal", "clouds", "flowers", "food", "grass", "person"]


def hex_id(*parts):
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def wikipedia_xml(name, image_id, body):
    """A ``texts/<id>.xml`` as the archive has it: not well-formed XML (bare '&', HTML entities)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<document name="{name}">\n<imageset>\n'
            f'  <image id="{image_id}"/>\n</imageset>\n<text>{body}</text>\n</document>\n')


def wikipedia(root, train_per_class=3, test_per_class=2, flat_images=False):
    """``wikipedia_dataset/``: the two lists (tab-separated, categories interleaved), texts, images."""
    base, expected, lists = os.path.join(root, "wikipedia_dataset"), {}, {"train": [], "test": []}
    for i in range(train_per_class + test_per_class):
        for number, category in enumerate(WIKI_CATEGORIES, 1):
            text_id, image_id = f"{hex_id('text', category, i)}-{i + 1}", hex_id("image", category, i)
            body = (f"\n  {category.title()} &amp; Architecture &ndash; part {i}.\n\n"
                    f"Sculpture & painting of the {category} period.  \n")
            write_text(os.path.join(base, "texts", text_id + ".xml"), wikipedia_xml(f"{category}{i}", image_id, body))
            folder = "images" if flat_images else os.path.join("images", category)
            write_image(os.path.join(base, folder, image_id + ".jpg"))
            expected[text_id] = (f"{category.title()} & Architecture \u2013 part {i}. "
                                 f"Sculpture & painting of the {category} period.")
            lists["train" if i < train_per_class else "test"].append(f"{text_id}\t{image_id}\t{number}")
    for split, lines in lists.items():
        write_lines(os.path.join(base, f"{split}set_txt_img_cat.list"), lines)
    return expected


def pascal_sentence(root, categories=PASCAL_CATEGORIES, per_class=10, sentence_suffix=".txt"):
    """``pascal_sentence/``: ``dataset/<category>/2008_*.jpg`` and, per image, ``sentence/<category>/``
    a file of 5 padded sentence lines (``sentence_suffix`` "txt" = a downloader's dot-less names)."""
    base, expected = os.path.join(root, "pascal_sentence"), {}
    for c, category in enumerate(categories):
        for i in range(per_class):
            stem = f"2008_{100 * c + i:06d}"
            write_image(os.path.join(base, "dataset", category, stem + ".jpg"))
            sentences = [f"A {category} number {i} in view {k}." for k in range(5)]
            write_text(os.path.join(base, "sentence", category, stem + sentence_suffix),
                       "".join(f" {s} \n" for s in sentences) + "\n")
            expected[f"{category}/{stem}"] = " ".join(sentences)
    return expected


def manifest_records(classes=NUS_CLASSES, per_class=10, split=False):
    """Manifest lines (dicts) for ``manifest_folder``: inline texts and text files alternate;
    with ``split``, the last fifth of each class is test."""
    records = []
    for i in range(per_class):
        for name in classes:
            uid = f"{name}_{i:04d}"
            record = {"id": uid, "image": f"images/{name}/{uid}.jpg", "class": name}
            record.update({"text": f"{name} photo {i}"} if i % 2 else {"text_file": f"texts/{uid}.txt"})
            if split:
                record["split"] = "test" if i >= per_class - per_class // 5 else "train"
            records.append(record)
    return records


def manifest_folder(root, folder="nus_wide_10k", records=None, classes_file=None):
    """A dataset folder in the manifest format: the files ``records`` name, ``manifest.jsonl`` and,
    when given, ``classes.txt``. Returns ``{id (as a string): text}``."""
    base, expected = os.path.join(root, folder), {}
    records = manifest_records() if records is None else records
    for record in records:
        write_image(os.path.join(base, record["image"]))
        text = record.get("text", f"tags of {record['id']}: sky  blue\n")
        if "text_file" in record:
            write_text(os.path.join(base, record["text_file"]), text)
        expected[str(record["id"])] = text.strip()
    write_manifest(base, records)
    if classes_file is not None:
        write_lines(os.path.join(base, "classes.txt"), classes_file)
    return expected


def write_manifest(base, records, raw=None):
    """``manifest.jsonl`` of ``records``; ``raw`` = {line number: text} replaces those lines verbatim."""
    lines = [json.dumps(record) for record in records]
    for number, text in (raw or {}).items():
        lines[number - 1] = text
    write_lines(os.path.join(base, "manifest.jsonl"), lines)
