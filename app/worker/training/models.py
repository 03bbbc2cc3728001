"""The networks: our `smallcnn`, and torchvision models with their head replaced.

Every model comes as a `Net`: the module, its backbone split into named stages from input to
output (what `last_n` unfreezes and what gradient norms are reported per), and its head.
Initialisation is `scratch`, `imagenet` (torchvision's weights file, read from the local torch
hub cache, never downloaded at run time) or an earlier run's checkpoint, whose backbone is kept
and whose head is replaced when the classes differ (transfer learning on your own runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from app.worker.errors import InvalidInput
from app.worker.training.checkpoint import FILENAME as CHECKPOINT_FILE
from app.worker.training.config import RunConfig
from app.worker.training.outputs import run_folder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- smallcnn


def _conv(c_in: int, c_out: int, stride: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    return layers


class Block(nn.Module):
    """Two 3×3 convs; with `residual`, their output is added to the input (He et al., 2016).

    The shortcut is the identity, or a 1×1 conv (+ BN) where the channels or the stride change.
    A residual branch starts at zero, so every block begins as the identity and a deep residual
    net is well-posed at initialisation: with batch norm the branch's last BN scale γ is 0
    (Goyal et al., "Accurate, Large Minibatch SGD", 2017; torchvision's `zero_init_residual`),
    without it a scalar gain α on the branch is 0 (De and Smith, "Batch Normalization Biases
    Residual Blocks Towards the Identity Function", NeurIPS 2020: SkipInit).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool, residual: bool):
        super().__init__()
        self.residual = residual
        self.body = nn.Sequential(
            *_conv(c_in, c_out, stride, batch_norm),
            nn.ReLU(inplace=True),
            *_conv(c_out, c_out, 1, batch_norm),
        )
        self.shortcut: nn.Module = nn.Identity()
        if residual and (c_in != c_out or stride != 1):
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1, stride, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            self.shortcut = nn.Sequential(*layers)
        self.act = nn.ReLU(inplace=True)
        # SkipInit's gain where there is no BN to zero (see zero_branch)
        self.gain = nn.Parameter(torch.zeros(())) if residual and not batch_norm else None

    def zero_branch(self) -> None:
        """Make the residual branch output zero at initialisation (the block is the identity)."""
        last = self.body[-1]
        if isinstance(last, nn.BatchNorm2d):
            nn.init.zeros_(last.weight)
        elif self.gain is not None:
            nn.init.zeros_(self.gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.residual:
            if self.gain is not None:
                out = out * self.gain
            out = out + self.shortcut(x)
        return self.act(out)


class SmallCNN(nn.Module):
    """stem → 3 stages (width w, 2w, 4w; `depth` blocks each) → global average pool → linear.

    Stages 2 and 3 halve the resolution first (`downsample`): 2×2 max or average pooling; the
    stage's first conv taking stride 2 ("strided", Springenberg et al.'s Strided-CNN: no extra
    layer); or an extra 3×3 stride-2 conv (+ BN, ReLU) in the pool's place ("conv", their
    All-CNN: one more layer of parameters). Input (B, 3, H, W) float, output (B, num_classes).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        width: int = 32,
        depth: int = 1,
        batch_norm: bool = True,
        residual: bool = False,
        downsample: str = "maxpool",
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv(3, width, 1, batch_norm), nn.ReLU(inplace=True))
        stages = []
        c_in = width
        for index in range(3):
            c_out = width * 2**index
            layers: list[nn.Module] = []
            stride = 1
            if index > 0:
                if downsample == "maxpool":
                    layers.append(nn.MaxPool2d(2))
                elif downsample == "avgpool":
                    layers.append(nn.AvgPool2d(2))
                elif downsample == "conv":
                    layers += [*_conv(c_in, c_in, 2, batch_norm), nn.ReLU(inplace=True)]
                else:
                    stride = 2
            for block in range(depth):
                layers.append(Block(c_in, c_out, stride if block == 0 else 1, batch_norm, residual))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c_in, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():  # after the convs' init, which would not touch BN
            if isinstance(module, Block) and module.residual:
                module.zero_branch()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.head(torch.flatten(self.pool(x), 1))


# ---------------------------------------------------------------- Net


@dataclass
class Net:
    """A model with its named stages (input → output) and its head.

    `groups()` yields every (name, module) whose parameters are reported together: the
    stages, then "head".
    """

    arch: str
    model: nn.Module
    stages: Sequence[tuple[str, nn.Module]]
    head: nn.Module
    head_prefix: str  # state-dict key prefix of the head's parameters
    frozen: list[str] = field(default_factory=list)  # names of the stages that do not train

    def groups(self) -> Iterator[tuple[str, nn.Module]]:
        """The stages from input to output, then ("head", head)."""
        yield from self.stages
        yield "head", self.head

    def set_trainable(self, strategy: str, unfreeze_stages: int = 1) -> list[str]:
        """Freeze stages per strategy; returns the frozen stages' names.

        full: everything trains; frozen: only the head (feature extraction); last_n: the last
        `unfreeze_stages` stages and the head.
        """
        if strategy == "full":
            frozen = 0
        elif strategy == "frozen":
            frozen = len(self.stages)
        else:
            frozen = max(0, len(self.stages) - unfreeze_stages)
        names = []
        for index, (name, stage) in enumerate(self.stages):
            trains = index >= frozen
            for parameter in stage.parameters():
                parameter.requires_grad_(trains)
            if not trains:
                names.append(name)
        self.frozen = names
        return names

    def train_mode(self) -> None:
        """model.train(), except frozen stages, which stay in eval mode (BN statistics kept)."""
        self.model.train()
        frozen = set(self.frozen)
        for name, stage in self.stages:
            if name in frozen:
                stage.eval()


def _torchvision(arch: str, num_classes: int) -> Net:
    """A torchvision model with 1000 ImageNet outputs (its head is replaced later)."""
    from torchvision import models

    if arch == "resnet18":
        m = models.resnet18(weights=None)
        stages = [("stem", nn.ModuleList([m.conv1, m.bn1]))]
        stages += [(f"layer{i}", getattr(m, f"layer{i}")) for i in range(1, 5)]
        return Net(arch, m, stages, m.fc, "fc.")
    if arch == "mobilenet_v3_small":
        m = models.mobilenet_v3_small(weights=None)
        f = m.features  # 13 blocks; stages at each resolution (strides 2, 4, 8, 16, 32)
        cuts = [
            ("stem", [0]),
            ("stage1", [1]),
            ("stage2", [2, 3]),
            ("stage3", [4, 5, 6, 7, 8]),
            ("stage4", [9, 10, 11, 12]),
        ]
        stages = [(name, nn.ModuleList([f[i] for i in idx])) for name, idx in cuts]
        return Net(arch, m, stages, m.classifier, "classifier.")
    if arch == "efficientnet_b0":
        m = models.efficientnet_b0(weights=None)
        f = m.features  # 9 blocks: stem, seven MBConv stages, the final 1×1 conv
        cuts = [
            ("stem", [0]),
            ("stage1", [1]),
            ("stage2", [2]),
            ("stage3", [3]),
            ("stage4", [4, 5]),
            ("stage5", [6, 7, 8]),
        ]
        stages = [(name, nn.ModuleList([f[i] for i in idx])) for name, idx in cuts]
        return Net(arch, m, stages, m.classifier, "classifier.")
    raise InvalidInput("model", f"unknown model {arch}")


def _replace_head(net: Net, num_classes: int) -> None:
    """A fresh last linear layer with `num_classes` outputs (the rest of the head is kept)."""
    m: Any = net.model
    if net.arch == "resnet18":
        m.fc = nn.Linear(m.fc.in_features, num_classes)
        net.head = m.fc
    else:
        last = m.classifier[-1]
        m.classifier[-1] = nn.Linear(last.in_features, num_classes)
        net.head = m.classifier


def stage_count(config: RunConfig) -> int:
    """How many backbone stages the config's model has (what `unfreeze_stages` counts)."""
    return {"smallcnn": 4, "resnet18": 5, "mobilenet_v3_small": 5, "efficientnet_b0": 6}[
        config.model
    ]


def build(config: RunConfig, num_classes: int) -> Net:
    """The config's architecture with `num_classes` outputs, randomly initialised."""
    if config.model == "smallcnn":
        m = SmallCNN(
            num_classes,
            width=config.width,
            depth=config.depth,
            batch_norm=config.batch_norm,
            residual=config.residual,
            downsample=config.downsample,
        )
        stages = [
            ("stem", m.stem),
            ("stage1", m.stage1),
            ("stage2", m.stage2),
            ("stage3", m.stage3),
        ]
        return Net("smallcnn", m, stages, m.head, "head.")
    net = _torchvision(config.model, num_classes)
    _replace_head(net, num_classes)
    return net


# ---------------------------------------------------------------- ImageNet weights


def imagenet_weights(arch: str) -> Any:
    """torchvision's ImageNet weights entry for an architecture (it names the file and URL)."""
    from torchvision import models

    return {
        "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
        "mobilenet_v3_small": models.MobileNet_V3_Small_Weights.IMAGENET1K_V1,
        "efficientnet_b0": models.EfficientNet_B0_Weights.IMAGENET1K_V1,
    }[arch]


def imagenet_path(arch: str) -> tuple[Path, str]:
    """(where torch's hub cache keeps the file, the URL it comes from).

    The folder is `torch.hub.get_dir()/checkpoints` (TORCH_HOME/hub/checkpoints; by default
    ~/.cache/torch/hub/checkpoints), where torchvision's own downloads land.
    """
    url = imagenet_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def check_imagenet(arch: str) -> Path:
    """The weights file's path; InvalidInput("init", ...) naming the path and URL when absent."""
    path, url = imagenet_path(arch)
    if not path.is_file():
        raise InvalidInput(
            "init",
            f"ImageNet weights for {arch} are not in the torch cache: expected {path} "
            f"(from {url}); run `cvprep weights fetch {arch}` where the internet can be reached, "
            "or copy the file there",
        )
    return path


def fetch_imagenet(arch: str) -> Path:
    """Download the weights file into the torch hub cache (needs the internet; checks its hash)."""
    weights = imagenet_weights(arch)
    weights.get_state_dict(progress=True, check_hash=True)
    return imagenet_path(arch)[0]


def load_imagenet(net: Net, num_classes: int) -> None:
    """Load the ImageNet file into a fresh torchvision model, then put a new head on it."""
    path = check_imagenet(net.arch)
    state = torch.load(path, map_location="cpu", weights_only=True)
    fresh = _torchvision(net.arch, 1000)
    fresh.model.load_state_dict(state)
    _replace_head(fresh, num_classes)
    net.model.load_state_dict(fresh.model.state_dict())


# ---------------------------------------------------------------- transfer from a run


def resolve_init_checkpoint(config: RunConfig, runs_dir: Path | None) -> Path:
    """The checkpoint file behind init "run:<id>" (runs_dir/<id>/checkpoint.pt) or a path."""
    if config.init_kind == "run":
        if runs_dir is None:
            raise InvalidInput(
                "init",
                f"'{config.init}' names a run, but no runs folder is known here; give the checkpoint's path instead",
            )
        path = run_folder(runs_dir, config.init[4:]) / CHECKPOINT_FILE
    else:
        path = Path(config.init).expanduser()
    if not path.is_file():
        raise InvalidInput("init", f"no checkpoint at {path}")
    return path


def read_init_checkpoint(config: RunConfig, path: Path) -> dict[str, Any]:
    """The earlier run's checkpoint, checked against this config (same architecture).

    Raises InvalidInput("init", ...) when the file is not a run checkpoint or its model differs.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InvalidInput("init", f"cannot read {path} as a checkpoint: {error}") from error
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "config" not in checkpoint:
        raise InvalidInput("init", f"{path} is not a cvprep run checkpoint (no model and config)")
    source = checkpoint["config"]
    keys = ["model"] + (
        ["width", "depth", "batch_norm", "residual", "downsample"]
        if config.model == "smallcnn"
        else []
    )
    for key in keys:
        if source.get(key) != getattr(config, key):
            raise InvalidInput(
                "init",
                f"the run in {path} has {key} {source.get(key)!r}; this config has {getattr(config, key)!r}, so its weights do not fit",
            )
    return checkpoint


def load_transfer(net: Net, checkpoint: dict[str, Any], classes: list[str]) -> bool:
    """Copy the earlier run's weights; its head too when its classes equal `classes`.

    Returns True when the head was kept, False when it stays freshly initialised.
    """
    state = checkpoint["model"]
    same_classes = list(checkpoint.get("classes", [])) == list(classes)
    if not same_classes:
        state = {k: v for k, v in state.items() if not k.startswith(net.head_prefix)}
        own = net.model.state_dict()
        # Keep the head's hidden layers (mobilenet's classifier) where their shapes still fit.
        for key, value in checkpoint["model"].items():
            fits = key in own and own[key].shape == value.shape
            if key.startswith(net.head_prefix) and fits and not _is_last_layer(net, key):
                state[key] = value
    missing, unexpected = net.model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith(net.head_prefix) for k in missing):
        raise InvalidInput(
            "init",
            f"the checkpoint's weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})",
        )
    return same_classes


def _is_last_layer(net: Net, key: str) -> bool:
    if net.arch in ("resnet18", "smallcnn"):
        return True
    last = len(net.model.classifier) - 1  # type: ignore[arg-type]
    return key.startswith(f"classifier.{last}.")
