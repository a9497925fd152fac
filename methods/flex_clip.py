"""FLEX-CLIP (arXiv 2411.17454) as plain torch.

Stage 1, a composite multimodal VAE-GAN conditioned on the class embedding ``a`` (the CLIP
text feature of the class prompt): per modality an encoder ``E(x, a) -> (mu, logvar)``, a
generator ``G(z, a) -> x_hat`` (L2-normalised, like CLIP features) and a conditional critic
``D(x, a)`` trained with WGAN-GP. The two generators share the latent ``z`` of a pair, so a
cross-modal term can tie the image and text generated for the same ``(z, a)``.

Stage 2, per modality a gated residual projection ``f = norm(g * P(x) + (1 - g) * x)`` with
``P`` an MLP and ``g = sigmoid(W [x; P(x)] + b)`` per dimension, a shared classifier over all
classes, and a cross-modal alignment term between paired fused features.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(dims, final_activation=None):
    """Linear layers with LeakyReLU(0.2) between them (the f-VAEGAN-style blocks)."""
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.LeakyReLU(0.2))
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)


class ConditionalEncoder(nn.Module):
    def __init__(self, dim, cond_dim, hidden, latent):
        super().__init__()
        self.body = mlp([dim + cond_dim, hidden, 2 * latent])

    def forward(self, x, a):
        mu, logvar = self.body(torch.cat([x, a], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)


class ConditionalGenerator(nn.Module):
    def __init__(self, latent, cond_dim, hidden, dim):
        super().__init__()
        self.body = mlp([latent + cond_dim, hidden, dim])

    def forward(self, z, a):
        return F.normalize(self.body(torch.cat([z, a], dim=1)), dim=-1)


class ConditionalCritic(nn.Module):
    def __init__(self, dim, cond_dim, hidden):
        super().__init__()
        self.body = mlp([dim + cond_dim, hidden, 1])

    def forward(self, x, a):
        return self.body(torch.cat([x, a], dim=1)).squeeze(1)


class ModalityVAEGAN(nn.Module):
    """Encoder, generator and critic of one modality."""

    def __init__(self, dim, cond_dim, hidden, latent):
        super().__init__()
        self.latent = latent
        self.encoder = ConditionalEncoder(dim, cond_dim, hidden, latent)
        self.generator = ConditionalGenerator(latent, cond_dim, hidden, dim)
        self.critic = ConditionalCritic(dim, cond_dim, hidden)


def reparameterize(mu, logvar):
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def kl_divergence(mu, logvar):
    """KL(q(z|x,a) || N(0, I)), averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)).mean()


def reconstruction_loss(x_hat, x, kind="cosine"):
    """1 - cosine (default: CLIP features are compared by angle), or MSE; never BCE (they are
    not in [0, 1])."""
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(x_hat, x, dim=-1)).mean()
    if kind == "mse":
        return F.mse_loss(x_hat, x)
    raise ValueError(f"TRAINER.FLEXCLIP.RECONSTRUCTION must be cosine or mse, got {kind!r}")


def gradient_penalty(critic, real, fake, a):
    """WGAN-GP: mean of (||grad_x D(x_mix, a)|| - 1)^2 at random interpolates of real and fake."""
    eps = torch.rand(real.shape[0], 1, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed, a).sum(), mixed, create_graph=True)
    return ((grad.norm(2, dim=1) - 1.0) ** 2).mean()


def critic_loss(critic, real, fake, a, gp_weight):
    """Wasserstein critic loss ``D(fake) - D(real)`` plus the gradient penalty."""
    return critic(fake, a).mean() - critic(real, a).mean() + gp_weight * gradient_penalty(critic, real, fake, a)


def cross_modal_consistency(image, text, a, kind="pair"):
    """Ties the image and text generated for the same (z, a): ``pair`` = 1 - cos(image, text);
    ``class`` = both close to the class embedding."""
    if kind == "pair":
        return (1.0 - F.cosine_similarity(image, text, dim=-1)).mean()
    if kind == "class":
        return ((1.0 - F.cosine_similarity(image, a, dim=-1)) + (1.0 - F.cosine_similarity(text, a, dim=-1))).mean()
    raise ValueError(f"TRAINER.FLEXCLIP.CROSS_MODAL must be pair or class, got {kind!r}")


class GatedProjection(nn.Module):
    """``f = norm(g * P(x) + (1 - g) * x)``. ``mode``: ``gate`` (learned per-dimension g, the
    paper's), ``no_gate`` (g fixed at 0.5), ``no_fusion`` (f = norm(P(x)): no CLIP feature)."""

    MODES = ("gate", "no_gate", "no_fusion")

    def __init__(self, dim, hidden, mode="gate", gate_bias=-2.0):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"TRAINER.FLEXCLIP.PROJECTION must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.projector = mlp([dim, hidden, dim])
        self.gate = nn.Linear(2 * dim, dim)
        nn.init.constant_(self.gate.bias, gate_bias)  # start close to the CLIP feature (small g)

    def gate_values(self, x, projected):
        if self.mode == "no_gate":
            return torch.full_like(x, 0.5)
        return torch.sigmoid(self.gate(torch.cat([x, projected], dim=1)))

    def forward(self, x):
        x = F.normalize(x, dim=-1)
        projected = self.projector(x)
        if self.mode == "no_fusion":
            return F.normalize(projected, dim=-1)
        g = self.gate_values(x, projected)
        return F.normalize(g * projected + (1 - g) * x, dim=-1)


class CosineClassifier(nn.Module):
    """``scale * norm(f) @ norm(W)^T``: one classifier shared by both modalities."""

    def __init__(self, dim, num_classes, scale):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.02)
        self.scale = scale

    def forward(self, f):
        return self.scale * F.normalize(f, dim=-1) @ F.normalize(self.weight, dim=-1).t()


def alignment_loss(image, text, labels, kind="contrastive", temperature=0.07):
    """Paired fused features close. ``contrastive``: symmetric InfoNCE over the batch, each
    image's own text the positive and other classes' texts the negatives; other pairs of the
    same class are left out (retrieval counts them as relevant, and generated pairs of a class
    are near-duplicates that must not repel each other). ``mse``: each image close to its text."""
    if kind == "contrastive":
        logits = F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t() / temperature
        same_class = labels[:, None] == labels[None, :]
        own = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        logits = logits.masked_fill(same_class & ~own, float("-inf"))
        target = torch.arange(len(labels), device=labels.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    if kind == "mse":
        return F.mse_loss(F.normalize(image, dim=-1), F.normalize(text, dim=-1))
    raise ValueError(f"TRAINER.FLEXCLIP.ALIGN must be contrastive or mse, got {kind!r}")


def class_alignment_loss(image, class_text, labels, temperature=0.07):
    """Classification form of the alignment: each image against every class's fused text
    (several images of one class share a text, so pairwise InfoNCE would punish them)."""
    logits = F.normalize(image, dim=-1) @ F.normalize(class_text, dim=-1).t() / temperature
    return F.cross_entropy(logits, labels)


def fit_vaegan(models, sample_batch, steps, optimizers, settings, log=print, log_every=100):
    """Stage 1: ``steps`` generator updates of the per-modality VAE-GANs, each after
    ``n_critic`` critic updates, on batches ``sample_batch() -> ({modality: features}, class
    embeddings)``. A step count, not epochs: the few-shot sets are tiny and vary 100-fold in
    size, and the generator needs a similar number of updates on all of them. ``settings``:
    loss weights kl, reconstruction, adversarial, gp, cross_modal; n_critic; reconstruction_kind;
    cross_modal_kind. Returns the last logged mean losses."""
    names, totals, means = list(models), {}, {}
    for step in range(1, steps + 1):
        for _ in range(settings["n_critic"]):
            feats, a = sample_batch()
            for m in names:
                z = torch.randn(len(a), models[m].latent, device=a.device)
                with torch.no_grad():
                    fake = models[m].generator(z, a)
                loss_d = critic_loss(models[m].critic, feats[m], fake, a, settings["gp"])
                optimizers[m]["critic"].zero_grad()
                loss_d.backward()
                optimizers[m]["critic"].step()
        feats, a = sample_batch()
        z_prior = torch.randn(len(a), models[names[0]].latent, device=a.device)
        parts, generated = {}, {}
        for m in names:
            mu, logvar = models[m].encoder(feats[m], a)
            recon = models[m].generator(reparameterize(mu, logvar), a)
            generated[m] = models[m].generator(z_prior, a)
            parts[f"kl_{m}"] = settings["kl"] * kl_divergence(mu, logvar)
            parts[f"rec_{m}"] = settings["reconstruction"] * reconstruction_loss(
                recon, feats[m], settings["reconstruction_kind"])
            parts[f"adv_{m}"] = -settings["adversarial"] * models[m].critic(generated[m], a).mean()
        if len(names) == 2 and settings["cross_modal"] > 0:
            parts["cross"] = settings["cross_modal"] * cross_modal_consistency(
                generated[names[0]], generated[names[1]], a, settings["cross_modal_kind"])
        loss_g = sum(parts.values())
        if not torch.isfinite(loss_g):
            raise FloatingPointError(f"stage-1 loss is {loss_g.item()} at step {step}: training diverged")
        for m in names:
            optimizers[m]["vae"].zero_grad()
        loss_g.backward()
        for m in names:
            optimizers[m]["vae"].step()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value.item()
        if step % log_every == 0 or step == steps:
            count = step % log_every or log_every
            means = {k: v / count for k, v in totals.items()}
            log(f"stage 1 step [{step}/{steps}] " + " ".join(f"{k} {v:.4f}" for k, v in means.items()))
            totals = {}
    return means


@torch.no_grad()
def generate(models, class_embeddings, labels, per_class, generator):
    """``per_class`` pseudo features per label in ``labels`` for every modality, sharing one
    latent per pseudo pair; ``generator`` (a torch.Generator) makes them reproducible."""
    names = list(models)
    index = torch.tensor(labels, dtype=torch.long).repeat_interleave(per_class)
    a = class_embeddings[index.to(class_embeddings.device)]
    z = torch.randn(len(index), models[names[0]].latent, generator=generator).to(a.device)
    return {m: models[m].generator(z, a) for m in names}, index
