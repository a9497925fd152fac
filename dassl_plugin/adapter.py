"""Our trainers as Dassl ``TrainerX`` subclasses: Dassl provides the data, our trainer the rest.

``dassl_trainer(CMM, "CMM")`` is ``class CMM(DasslData, ours.CMM, TrainerX)``: our trainer's
own code runs unchanged (loop, log lines, checkpoints, feature cache, evaluation), except that
its dataset comes from Dassl's ``DataManager`` (Dassl's registry, its few-shot sampler, its
image loaders), as every Dassl trainer's does.
"""
from dassl.engine import TrainerX


class DasslData:
    """The mixin that makes one of our FeatureTrainers a Dassl trainer."""

    def load_dataset(self):
        """SimpleTrainer's ``build_data_loader`` (``DataManager(cfg)``: ``self.dm``, the image
        loaders, ``num_classes``, ``lab2cname``), then its dataset: features come from it."""
        self.build_data_loader()
        return self.dm.dataset

    def split_items(self, split):
        """Never read test as val: CoOp's ImageNet passes its test list as val, so a search on val
        (Tip-Adapter, CMM, the linear probe) or best-val deployment would choose on test."""
        if split == "val" and self.dataset.val is self.dataset.test:
            raise ValueError(f"the checkout's {self.cfg.DATASET.NAME} uses its test set as the validation set: "
                             f"{type(self).__name__} would choose on test; run it with this repository's train.py "
                             "(its ImageNet draws val from the train images) or without val searches")
        return super().split_items(split)

    def after_train(self):
        """CoOp's train.py never calls ``report()``; print it where our train.py would."""
        super().after_train()
        self.report()


def dassl_trainer(trainer_cls, name):
    """A TrainerX subclass named ``name`` that runs ``trainer_cls`` on Dassl's DataManager."""
    return type(name, (DasslData, trainer_cls, TrainerX), {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{trainer_cls.__name__} of this repository, on Dassl's DataManager.",
    })
