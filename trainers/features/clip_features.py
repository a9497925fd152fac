"""Frozen CLIP features for a dataset, through the feature cache.

The CLIP model is built only when something must be encoded: a run whose features are all
cached never loads the weights (the cache key needs only the weights file's digest). Under
torchrun (``trainers.features.distributed``) the ranks share the batches of every encoding, rank 0 writes
the entry, and all ranks return the same features as one process would. ``identity()`` says
which features a run used (backbone, weights digest, precision, cache entries) for its provenance.
"""
import hashlib
import json
import os

import open_clip
import torch
from torch.utils.data import DataLoader

from common.atomic_io import write_json
from common.stable_seed import stable_seed
from datasets.feature_source import FeatureSource, augment_views
from datasets.image_loading import ImageViews
from datasets.transforms import augment_transform, eval_transform

from ..core.logger import progress
from .clip_backbone import BackboneError, load_clip, resolve_backbone
from .distributed import any_rank, barrier, gather_batches, is_main, my_batches
from .feature_cache import FeatureCache, default_cache_root, entry_key, file_identities, writing_to
from .templates import format_prompt
from .text_encoding import mean_of_windows, text_windows


class ViewSeeds:
    """Seed of augmented view ``index`` for item ``i``: a function of the image's path only."""

    def __init__(self, seed, index, relpaths):
        self.seed, self.index, self.relpaths = seed, index, relpaths

    def __call__(self, i):
        return stable_seed(self.seed, self.relpaths[i], self.index)


class CLIPFeatureSource(FeatureSource):
    def __init__(self, cfg, dataset):
        self.cfg = cfg
        self.image_identity = cfg.FEATURES.IMAGE_IDENTITY
        file_identities([], self.image_identity)  # an unknown mode fails here, naming the key
        root = cfg.FEATURES.CACHE_DIR or default_cache_root()
        self.spec = resolve_backbone(cfg, digest_memo=os.path.join(root, "weights_digests.json"))
        self.cache = FeatureCache(os.path.join(root, self.spec.slug))
        self.device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
        self.precision = cfg.CLIP.PRECISION if self.device.type == "cuda" else "fp32"
        if self.precision not in ("amp", "fp16", "fp32"):
            raise ValueError(f"CLIP.PRECISION must be amp, fp16 or fp32, got {cfg.CLIP.PRECISION!r}")
        self.dataset_name = cfg.DATASET.NAME
        self.base_dir = dataset.dataset_dir
        self._model = None
        self._card = None

    def summary(self):
        s = self.spec
        return (f"CLIP {s.name} (open_clip {s.model_name}, weights {s.pretrained}, digest {s.digest[:12]}), "
                f"precision {self.precision}, image identity {self.image_identity}, cache {self.cache.directory}")

    def identity(self):
        """What this run's features are: the backbone, its weights digest, the precision, the cache
        and its image-identity mode, and ``{"<group>/<label>": key[:16]}`` of every cache entry the
        run read or wrote so far (a list of keys where one label served several sample lists)."""
        s = self.spec
        return {"source": "clip", "backbone": s.name, "model_name": s.model_name, "pretrained": s.pretrained,
                "weights_digest": s.digest, "precision": self.precision, "cache_dir": self.cache.directory,
                "image_identity": self.image_identity, "entries": self.cache.entries()}

    # --- the model, built on demand -------------------------------------------------------
    @property
    def card_path(self):
        return os.path.join(self.cache.directory, "model.json")

    def model(self):
        """The CLIP model, built on first use; building it (re)writes the model card."""
        if self._model is None:
            print(f"Loading CLIP {self.spec.name} ({self.spec.model_name}, {self.spec.pretrained}) on {self.device}")
            model = load_clip(self.spec, self.device)
            self.check_input_size(model)
            if self.precision == "fp16":
                model = model.half()
            card = {"name": self.spec.name, "model_name": self.spec.model_name, "pretrained": self.spec.pretrained,
                    "digest": self.spec.digest, "logit_scale": float(model.logit_scale.exp())}
            with writing_to(self.cache.directory):
                write_json(card, self.card_path)
            self._model, self._card = model, card
        return self._model

    def check_input_size(self, model):
        size = model.visual.image_size
        size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        if size != tuple(self.cfg.INPUT.SIZE):
            raise BackboneError(f"INPUT.SIZE {tuple(self.cfg.INPUT.SIZE)} does not match the input size {size} "
                                f"of backbone {self.spec.name}; set INPUT.SIZE {size}")

    @property
    def logit_scale(self):
        """From the model card, so a run whose features are all cached never loads the weights."""
        if self._card is None:
            self._card = self.read_card()
        if self._card is None:
            self.model()  # building the model writes its card
        return self._card["logit_scale"]

    def read_card(self):
        """``model.json`` of this backbone, or None when it is missing or not trustworthy (a corrupt
        card is named; the caller rebuilds it from the model)."""
        if not os.path.isfile(self.card_path):
            return None
        try:
            with open(self.card_path) as f:
                card = json.load(f)
            if (isinstance(card, dict) and card.get("digest") == self.spec.digest
                    and isinstance(card.get("logit_scale"), float)):
                return card
            problem = "is not this backbone's card"
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            problem = f"is unreadable ({type(e).__name__}: {e})"
        print(f"Model card {self.card_path} {problem}: rebuilding it from the model")
        return None

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.precision == "amp")

    # --- images ---------------------------------------------------------------------------
    def image_features(self, items, split, view=None):
        return self._image_views(items, split, [view])[0]

    def augmented_image_features(self, items, split, num_views, scale=(0.5, 1.0), flip=True, seed=0):
        return self._image_views(items, split, augment_views(num_views, scale, flip, seed))

    def _image_views(self, items, split, views):
        """``[V, N, d]`` features of ``items`` under each view; only missing views are encoded."""
        relpaths = [os.path.relpath(item.impath, self.base_dir) for item in items]
        files = file_identities([item.impath for item in items], self.image_identity)
        transforms = [self.view_transform(view, relpaths) for view in views]
        entries = [self.image_entry(split, relpaths, files, view, desc) for view, (_, desc) in zip(views, transforms)]
        found = self.lookup(self.dataset_name, entries, relpaths)
        missing = [j for j, feats in enumerate(found) if feats is None]
        if missing:
            encoded = self.encode_images(items, split, [transforms[j][0] for j in missing])
            for j, feats in zip(missing, encoded):
                label, key = entries[j]
                meta = {"split": split, "transform": transforms[j][1]}
                found[j] = self.store(self.dataset_name, label, key, relpaths, feats, meta)
        return torch.stack(found)

    def lookup(self, group, entries, paths):
        """The cached features of each ``(label, key)`` entry, None where any rank misses it: all
        ranks then encode it together (they agree even if another job writes the cache meanwhile)."""
        found = [self.cache.load(group, label, key, paths) for label, key in entries]
        missing = any_rank([feats is None for feats in found])
        return [None if miss else feats for feats, miss in zip(found, missing)]

    def store(self, group, label, key, paths, features, meta):
        """Rank 0 writes the entry; every rank returns the stored values once it exists."""
        stored = self.cache.save(group, label, key, paths, features, meta, write=is_main())
        barrier()
        return stored

    def image_entry(self, split, relpaths, files, view, transform_desc):
        """(file label, key) of the cache entry for ``relpaths`` (whose files have the identities
        ``files``, see ``file_identities``) under ``view``."""
        label = f"{split}-eval" if view is None else f"{split}-aug{view.index}"
        key = entry_key(kind="image", backbone=self.spec.digest, dataset=self.dataset_name, split=split,
                        paths=relpaths, image_identity=self.image_identity, files=files,
                        transform=transform_desc, precision=self.precision)
        return label, key

    def view_transform(self, view, relpaths):
        """``((transform, seed_of), description)``: what ``ImageViews`` applies, and its cache key part."""
        if view is None:
            transform, desc = eval_transform(self.cfg.INPUT)
            return (transform, None), desc
        transform, desc = augment_transform(self.cfg.INPUT, view.scale, view.flip)
        return (transform, ViewSeeds(view.seed, view.index, relpaths)), f"{desc};seed={view.seed};view={view.index}"

    @torch.no_grad()
    def encode_image_batch(self, images):
        """Frozen image features (fp32) of a batch of image tensors, at CLIP.PRECISION; CoOp's
        online augmentation uses it too."""
        images = images.to(self.device, non_blocking=True)
        if self.precision == "fp16":
            images = images.half()
        with self.autocast():
            return self.model().encode_image(images).float()

    @torch.no_grad()
    def encode_images(self, items, split, views):
        """``[V, N, d]``: every image decoded once and encoded under each ``(transform, seed_of)``;
        this rank encodes its batches of DATALOADER.TEST.BATCH_SIZE images, then all are gathered."""
        self.model()  # build it (and its card) before the loader starts
        dataset = ImageViews([item.impath for item in items], views)
        batch_size = self.cfg.DATALOADER.TEST.BATCH_SIZE
        # A private generator: a DataLoader otherwise draws its worker seed from torch's global RNG,
        # and a cold cache would then shift every random number of the run after it.
        loader = DataLoader(dataset, batch_sampler=my_batches(len(items), batch_size),
                            num_workers=self.cfg.DATALOADER.NUM_WORKERS, pin_memory=self.device.type == "cuda",
                            generator=torch.Generator())
        chunks = []
        desc = f"Encoding {self.dataset_name}/{split} ({len(items):,} images x {len(views)} view(s))"
        print(desc)
        for images, _ in progress(loader, desc=desc, total=len(loader), unit="batch"):
            b, v = images.shape[:2]
            chunks.append(self.encode_image_batch(images.flatten(0, 1)).view(b, v, -1).transpose(0, 1).cpu())
        return gather_batches(chunks, len(items), batch_size, dim=1)

    # --- texts ----------------------------------------------------------------------------
    @torch.no_grad()
    def text_features(self, classnames, templates):
        prompts = [format_prompt(t, c) for c in classnames for t in templates]
        key = entry_key(kind="text", backbone=self.spec.digest, prompts=prompts, precision=self.precision)
        feats = self.lookup("text", [("prompts", key)], prompts)[0]
        if feats is None:
            feats = self.store("text", "prompts", key, prompts, self.encode_texts(prompts),
                               meta={"templates": list(templates)})
        return feats.view(len(classnames), len(templates), -1)

    def tokenizer(self):
        return open_clip.get_tokenizer(self.spec.model_name)

    def encode_texts(self, prompts):
        return self.encode_tokens(self.tokenizer()(prompts), desc="Encoding prompts")

    @torch.no_grad()
    def encode_tokens(self, tokens, desc, batch_size=256):
        """Text features (fp32, CPU) of ``[N, context]`` token ids, in batches (this rank's, then gathered)."""
        model, chunks = self.model(), []
        for batch in progress(my_batches(len(tokens), batch_size), desc=desc):
            with self.autocast():
                chunks.append(model.encode_text(tokens[batch.start:batch.stop].to(self.device)).float().cpu())
        return gather_batches(chunks, len(tokens), batch_size)

    # --- the texts of image-text pairs (retrieval) ------------------------------------------
    def pair_text_features(self, items, split):
        """``[N, d]``: each pair's text, windowed by FEATURES.LONG_TEXT (see text_encoding)."""
        f = self.cfg.FEATURES
        uids = [item.uid for item in items]
        digests = [hashlib.sha1(item.text.encode()).hexdigest()[:16] for item in items]
        key = entry_key(kind="pair_text", backbone=self.spec.digest, dataset=self.dataset_name, split=split,
                        uids=uids, texts=digests, mode=f.LONG_TEXT, max_chunks=f.MAX_TEXT_CHUNKS,
                        precision=self.precision)
        label = f"{split}-text-{f.LONG_TEXT}"
        feats = self.lookup(self.dataset_name, [(label, key)], uids)[0]
        if feats is None:
            tokenizer = self.tokenizer()
            windows = [text_windows(tokenizer, item.text, f.LONG_TEXT, f.MAX_TEXT_CHUNKS) for item in items]
            print(f"Encoding {self.dataset_name}/{split} texts ({len(items):,} texts, "
                  f"{sum(len(w) for w in windows):,} windows, {f.LONG_TEXT})")
            encoded = self.encode_tokens(torch.cat(windows), desc=f"Encoding {split} texts")
            feats = self.store(self.dataset_name, label, key, uids,
                               mean_of_windows(encoded, [len(w) for w in windows]),
                               meta={"split": split, "long_text": f.LONG_TEXT})
        return feats
