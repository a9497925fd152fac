"""LP++ (Huang, Shakeri, Dolz, Boudiaf, Bahig, Ben Ayed, CVPR 2024, "LP++: A Surprisingly Strong
Linear Probe for Few-Shot CLIP") as plain torch: the blended linear probe, its data-driven
initialisation and closed-form step sizes, and one full-batch training iteration.

    logits_ic = w_c . f_i + b_c + alpha_c * (t_c . f_i)        (f = norm(image feature), t = text prototype)

Read in FereshteShakeri/FewShot-CLIP-Strong-Baseline at commit f81054f995b060f8348d20e7306e15889b70c786
(methods/linear_probe_p2.py, methods/utils.py, main.py, main_imagenet.py, configs/base.yaml):
- ``w_c`` initialised to the SUM of the class's training features (``compute_centroids`` in
  methods/utils.py, whose division by the count is commented out); ``b`` is the bias of an
  ``nn.Linear`` (bias=True), left at torch's default uniform(-1/sqrt(d), 1/sqrt(d)) init and trained
  with ``w``;
- every ``alpha_c`` starts at one scalar, ALPHA_INIT_SCALE (250) times the mean over classes of the
  class mean of ``t_c . f_i`` (``calculate_init_alpha``: ``250 / shots * (class mean * shots)``);
- step sizes (``calculate_lr_w``, ``calculate_lr_alpha``): ``lr_w = 4 N / lambda_max(F^T F)`` and
  ``lr_alpha = N / (4 max_c sum_i (t_c . f_i)^2)``, N the number of training features;
- ``w, b``: SGD with momentum 0.9 (MOMENTUM) at ``lr_w``, one full-batch step per epoch, 300 epochs
  (configs/base.yaml ``train_epoch``); cross-entropy averaged over the batch;
- ``alpha``: every ALPHA_EVERY (10) epochs, ``alpha -= lr_alpha * alpha.grad`` after the step of ``w``.
  ``alpha`` is not in the optimizer and its ``.grad`` is never zeroed, so the official update uses
  the SUM of alpha's gradients over every epoch so far (``alpha_grad="accumulated"``, the default
  here); ``"current"`` uses only the gradient of the current epoch (the block step of the paper);
- training features: one pass of RandomResizedCrop(scale 0.5-1, bicubic) + flip over the few-shot
  images (main.py ``train_tranform``; ``recipes.LPPP_AUG_SCALE``, one view), each L2-normalised; text: the
  normalised mean of the normalised prompt embeddings of the dataset's template(s) (utils.py
  ``clip_classifier``). The text logits are NOT multiplied by CLIP's logit scale: ``alpha`` plays it.
The original trains in the CLIP model's dtype (fp16 on GPU); here everything is fp32 (or fp64).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .recipes import LPPP_ALPHA_EVERY as ALPHA_EVERY
from .recipes import LPPP_EPOCHS as EPOCHS

ALPHA_INIT_SCALE = 250.0  # linear_probe_p2.py calculate_init_alpha: alpha_init = 250 / shots * alpha_tilde
LR_W_FACTOR = 4.0  # calculate_lr_w: lr_w = 4 N / max eigenvalue of F^T F
LR_ALPHA_FACTOR = 4.0  # calculate_lr_alpha: lr_alpha = N / (4 max_c sum_i (f_i . t_c)^2)
MOMENTUM = 0.9  # torch.optim.SGD(classifier.parameters(), lr_temp, momentum=0.9)

ALPHA_GRAD_MODES = ("accumulated", "current")


def class_sums(features, labels, num_classes):
    """``[C, d]``: the sum of each class's features (the official ``compute_centroids``)."""
    sums = features.new_zeros(num_classes, features.shape[1])
    return sums.index_add_(0, labels, features)


def text_affinity(features, text):
    """``[N, C]`` = ``f_i . t_c``: the unscaled zero-shot logits that ``alpha`` multiplies."""
    return features @ text.t()


def init_alpha(features, labels, text, num_classes):
    """ALPHA_INIT_SCALE x the mean over classes of the class mean of ``f_i . t_c`` (one scalar)."""
    affinity = text_affinity(features, text)
    counts = torch.bincount(labels, minlength=num_classes).to(features.dtype)
    if (counts == 0).any():
        raise ValueError(f"LP++ initialisation needs training features of every class; classes "
                         f"{torch.nonzero(counts == 0).flatten().tolist()} have none")
    own = affinity.gather(1, labels[:, None]).squeeze(1)  # f_i . t_{y_i}
    class_means = own.new_zeros(num_classes).index_add_(0, labels, own) / counts
    return ALPHA_INIT_SCALE * class_means.mean()


def lr_visual(features):
    """``4 N / lambda_max(F^T F)``: the step size of the visual prototypes (and bias)."""
    gram = features.double().t() @ features.double()
    return float(LR_W_FACTOR * features.shape[0] / torch.linalg.eigvalsh(gram).max())


def lr_blend(features, text):
    """``N / (4 max_c sum_i (f_i . t_c)^2)``: the step size of the blending multipliers."""
    energy = text_affinity(features.double(), text.double()).pow(2).sum(dim=0).max()
    return float(features.shape[0] / (LR_ALPHA_FACTOR * energy))


class LPPlusPlusHead(nn.Module):
    """The LP++ classifier over frozen features: visual prototypes + bias + alpha-blended text.
    ``alpha_grad`` holds the gradient the next alpha step uses (a buffer, so resumes are exact)."""

    def __init__(self, text_prototypes):
        super().__init__()
        num_classes, dim = text_prototypes.shape
        self.register_buffer("text_prototypes", text_prototypes.clone())
        self.weight = nn.Parameter(torch.zeros(num_classes, dim, dtype=text_prototypes.dtype))
        self.bias = nn.Parameter(torch.zeros(num_classes, dtype=text_prototypes.dtype))
        self.alpha = nn.Parameter(torch.zeros(num_classes, dtype=text_prototypes.dtype))
        self.register_buffer("alpha_grad", torch.zeros(num_classes, dtype=text_prototypes.dtype))
        self.register_buffer("lr_visual", torch.zeros((), dtype=torch.float64))
        self.register_buffer("lr_alpha", torch.zeros((), dtype=torch.float64))

    def initialise(self, features, labels, generator=None):
        """The official initialisation and step sizes from the (normalised) training features;
        the bias is drawn like ``nn.Linear``'s default, from ``generator``."""
        with torch.no_grad():
            text = self.text_prototypes
            self.weight.copy_(class_sums(features, labels, len(text)))
            bound = features.shape[1] ** -0.5
            self.bias.copy_(torch.empty(len(text), dtype=torch.float64).uniform_(-bound, bound, generator=generator))
            self.alpha.fill_(init_alpha(features, labels, text, len(text)))
            self.alpha_grad.zero_()
            self.lr_visual.fill_(lr_visual(features))
            self.lr_alpha.fill_(lr_blend(features, text))

    def visual_parameters(self):
        """What the SGD optimizer updates (alpha has its own step)."""
        return [self.weight, self.bias]

    def forward(self, features):
        features = F.normalize(features.to(self.weight.dtype), dim=-1)
        return self.blend(features, text_affinity(features, self.text_prototypes))

    def blend(self, normalised, affinity):
        """The logits of normalised features whose ``text_affinity`` is already computed (training
        reuses it: the text and the features are fixed)."""
        return normalised @ self.weight.t() + self.bias + self.alpha * affinity


def visual_optimizer(head):
    """The official optimizer: SGD, momentum 0.9, at the closed-form ``lr_w``."""
    return torch.optim.SGD(head.visual_parameters(), lr=float(head.lr_visual), momentum=MOMENTUM)


def train_step(head, optimizer, features, labels, epoch, alpha_grad="accumulated", alpha_every=ALPHA_EVERY,
               affinity=None):
    """One official iteration (0-based ``epoch``): cross-entropy on the full batch, an SGD step of
    ``w, b``, and on every ``alpha_every``-th epoch the alpha step. Returns ``(loss, logits)``.
    ``affinity``: ``text_affinity`` of the (then already normalised) ``features``, if precomputed."""
    if alpha_grad not in ALPHA_GRAD_MODES:
        raise ValueError(f"alpha_grad must be one of {ALPHA_GRAD_MODES}, got {alpha_grad!r}")
    logits = head(features) if affinity is None else head.blend(features, affinity)
    loss = F.cross_entropy(logits, labels)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"LP++ loss is {loss.item()} at epoch {epoch + 1}: training diverged")
    optimizer.zero_grad()
    head.alpha.grad = None
    loss.backward()
    with torch.no_grad():
        if alpha_grad == "accumulated":
            head.alpha_grad += head.alpha.grad
        else:
            head.alpha_grad.copy_(head.alpha.grad)
    optimizer.step()
    if (epoch + 1) % alpha_every == 0:
        with torch.no_grad():
            head.alpha -= head.lr_alpha.to(head.alpha.dtype) * head.alpha_grad
    return loss.detach(), logits.detach()


def fit_lp_plus_plus(features, labels, text_prototypes, epochs=EPOCHS, alpha_grad="accumulated",
                     alpha_every=ALPHA_EVERY, generator=None):
    """A trained head from ``[N, d]`` training features (normalised here) and ``[C, d]`` normalised
    text prototypes: the official initialisation, then ``epochs`` full-batch iterations."""
    head = LPPlusPlusHead(text_prototypes)
    features = F.normalize(features.to(text_prototypes.dtype), dim=-1)
    head.initialise(features, labels, generator)
    optimizer = visual_optimizer(head)
    affinity = text_affinity(features, head.text_prototypes)
    for epoch in range(epochs):
        train_step(head, optimizer, features, labels, epoch, alpha_grad, alpha_every, affinity)
    return head
