"""Train the reward classifier: an explicit loop, honest validation, and a model directory the node can load.

    python -m so101_reward.train data/sim.npz --out models/reward
    python -m so101_reward.train data/bags.npz data/sim.npz --out models/reward --test data/heldout.npz
    python -m so101_reward.train data.npz --out m --architecture resnet18 --backbone-weights resnet18.safetensors

``train`` lists its steps; ``--out`` receives ``model.safetensors`` + ``model.json`` (architecture, preprocessing,
threshold), ``metrics.json`` and TensorBoard scalars.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from so101_contract.cli import open_fraction, positive_float, positive_int
from so101_contract.cpu_allocator import configure_cpu_allocator
from so101_contract.devices import DEFAULT_DEVICE
from so101_contract.files import atomic_write
from so101_reward.augment import AugmentConfig, augment
from so101_reward.classifier import RewardClassifier
from so101_reward.dataset import DatasetError, RewardDataset, concatenate
from so101_reward.metrics import choose_threshold, evaluate, format_report, threshold_sweep
from so101_reward.model import ModelWeightsError, RewardNet, load_backbone_weights
from so101_reward.model_config import ARCHITECTURES, RewardModelConfig, RewardModelConfigError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.02
    grad_clip: float = 1.0
    patience: int = 8  # epochs without a validation-loss improvement before stopping
    min_delta: float = 1e-3
    val_fraction: float = 0.2
    split_by: str = "episode"
    seed: int = 0
    augment: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class TrainResult:
    classifier: RewardClassifier
    reports: dict  # split name -> metrics.evaluate(...) report
    history: list[dict]  # one entry per epoch
    best_epoch: int
    seconds: float


def resolve_device(name: str) -> torch.device:
    """The torch device ``name`` names ("auto": cuda when available, else cpu); ValueError if it cannot be used."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: not a torch device; use auto, cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: the reward trainer runs on cpu or cuda; use auto, cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {name}: CUDA is not available here (no GPU, or torch {torch.__version__} was built "
                "without CUDA); use --device cpu, or --device auto to take a GPU when there is one"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s) (cuda:0.."
                f"cuda:{torch.cuda.device_count() - 1}); use --device cuda or --device auto"
            )
    return device


def prepare_out_dir(out_dir: Path) -> None:
    """Create the model directory before training, so a bad --out fails at once, not after the last epoch."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: is a file; give a directory for the model (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {out_dir}: cannot create the model directory ({err.strerror}); give another") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out_dir}: the directory is not writable; give another")


def to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) uint8 on the device, once; batches are indexed out of it."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous().to(device)


@torch.inference_mode()
def predict_logits(net: RewardNet, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    net.eval()
    return torch.cat([net(pixels[i : i + batch_size]).float() for i in range(0, len(pixels), batch_size)])


def train(
    dataset: RewardDataset,
    model_config: RewardModelConfig | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    test: RewardDataset | None = None,
    backbone_weights: Path | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
    log=print,
) -> TrainResult:
    """Train on ``dataset`` and report on train, validation and ``test``, in this order:

    1. Split by episode (default; ``split_by="frame"`` for a random frame split): neighbouring frames of one episode
       are near copies, so only held-out episodes measure generalisation. Both classes are represented in validation.
    2. Train with AdamW (``TrainConfig``'s lr, weight decay and gradient clip), colour/sharpness/shift augmentation,
       and BCE weighted by negatives/positives so the ~20 % success frames count as much as the failures.
    3. After every epoch: validation loss and F1; keep the best-loss weights; stop after ``patience`` epochs without
       an improvement of ``min_delta``.
    4. Sweep thresholds on validation and keep the best-F1 one (the highest among equals: a false success rewards a
       failure). Report accuracy, precision, recall, F1, ROC-AUC, the confusion matrix and the sweep.
    """
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = resolve_device(config.device)
    model_config = model_config or RewardModelConfig()
    # The model is trained on, and will only accept, the dataset's preprocessing.
    model_config = RewardModelConfig.from_dict(
        {**model_config.to_dict(), "preprocessing": dataset.preprocessing.to_dict()}
    )

    train_set, val_set = dataset.split(config.val_fraction, by=config.split_by, seed=config.seed)
    if train_set.positives == 0 or train_set.positives == len(train_set):
        raise DatasetError(f"the training split has only one class ({train_set.summary()}): add both kinds of frames")
    log(f"train: {train_set.summary()}\nvalidation ({config.split_by} split): {val_set.summary()}")

    net = RewardNet(model_config)
    if backbone_weights is not None:
        load_backbone_weights(net, backbone_weights)
    net.to(device)
    optimizer = torch.optim.AdamW(net.trainable_parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Class balance: a positive frame weighs negatives/positives, so both classes pull equally on the loss.
    pos_weight = torch.tensor((len(train_set) - train_set.positives) / train_set.positives, device=device)

    train_pixels, val_pixels = to_tensor(train_set.frames, device), to_tensor(val_set.frames, device)
    train_labels = torch.from_numpy(train_set.labels.astype(np.float32)).to(device)
    val_labels = torch.from_numpy(val_set.labels.astype(np.float32)).to(device)
    augment_config = AugmentConfig() if config.augment else AugmentConfig.none()

    writer = _tensorboard(out_dir)
    history: list[dict] = []
    best_loss, best_epoch, best_state, stale = float("inf"), 0, copy.deepcopy(net.state_dict()), 0
    from tqdm import tqdm

    bar = tqdm(range(1, config.epochs + 1), desc="reward training", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        order = torch.randperm(len(train_set), generator=generator).to(device)
        losses = []
        for i in range(0, len(order), config.batch_size):
            index = order[i : i + config.batch_size]
            pixels = train_pixels[index]
            if config.augment:  # the seeded generator lives on the CPU; on a GPU the global CUDA stream is used
                pixels = augment(pixels, augment_config, generator if device.type == "cpu" else None)
            logits = net(pixels)
            loss = F.binary_cross_entropy_with_logits(logits, train_labels[index], pos_weight=pos_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.trainable_parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())

        val_logits = predict_logits(net, val_pixels)
        val_loss = F.binary_cross_entropy_with_logits(val_logits, val_labels, pos_weight=pos_weight).item()
        val_probabilities = torch.sigmoid(val_logits).cpu().numpy()
        val_f1 = choose_threshold(threshold_sweep(val_set.labels, val_probabilities)).f1
        record = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": val_loss, "val_best_f1": val_f1}
        history.append(record)
        if writer is not None:
            for key in ("train_loss", "val_loss", "val_best_f1"):
                writer.add_scalar(f"reward/{key}", record[key], epoch)
        bar.set_postfix(loss=f"{record['train_loss']:.3f}", val_loss=f"{val_loss:.3f}", val_f1=f"{val_f1:.3f}")
        if val_loss < best_loss - config.min_delta:
            best_loss, best_epoch, best_state, stale = val_loss, epoch, copy.deepcopy(net.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                log(f"early stop after epoch {epoch}: no validation-loss improvement since epoch {best_epoch}")
                break
    if writer is not None:
        writer.close()

    net.load_state_dict(best_state)
    val_probabilities = torch.sigmoid(predict_logits(net, val_pixels)).cpu().numpy()
    threshold = model_config.threshold
    if 0 < val_set.positives < len(val_set):
        threshold = choose_threshold(threshold_sweep(val_set.labels, val_probabilities)).threshold
    else:
        log(f"validation has one class only: keeping threshold {threshold}")
    final_config = RewardModelConfig.from_dict({**model_config.to_dict(), "threshold": threshold})
    classifier = RewardClassifier(final_config, net.cpu(), model_id="trained")

    reports = {
        "train": evaluate(train_set.labels, classifier.probabilities(train_set.frames), threshold),
        "validation": evaluate(val_set.labels, val_probabilities, threshold),
    }
    if test is not None:
        if test.preprocessing != dataset.preprocessing:
            raise DatasetError("the test set was made with another preprocessing than the training data")
        reports["test"] = evaluate(test.labels, classifier.probabilities(test.frames), threshold)
    result = TrainResult(classifier, reports, history, best_epoch, time.perf_counter() - start)
    if out_dir is not None:
        save_result(result, config, Path(out_dir))
    return result


def save_result(result: TrainResult, config: TrainConfig, out_dir: Path) -> None:
    result.classifier.save(out_dir)
    metrics = {
        "train_config": asdict(config),
        "best_epoch": result.best_epoch,
        "seconds": result.seconds,
        "threshold": result.classifier.threshold,
        "reports": result.reports,
        "history": result.history,
    }
    text = json.dumps(metrics, indent=2, default=float) + "\n"
    atomic_write(out_dir / "metrics.json", lambda tmp: Path(tmp).write_text(text))


def _tensorboard(out_dir: Path | None):
    if out_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a pinned dependency, but training must not depend on a log viewer
        return None
    return SummaryWriter(str(Path(out_dir) / "tensorboard"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_reward.train",
        description=__doc__.split("\n\n")[0] + " Datasets come from python -m so101_reward.make_dataset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("datasets", nargs="+", type=Path, help="one or more dataset .npz files (concatenated)")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--test", type=Path, help="a separate held-out dataset .npz to report on (never trained on)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="small_cnn")
    parser.add_argument("--backbone-weights", type=Path, help="local ResNet weights (.safetensors or .pth state dict)")
    parser.add_argument("--split", choices=("episode", "frame"), default="episode", help="validation split")
    parser.add_argument("--val-fraction", type=open_fraction, default=TrainConfig.val_fraction)
    parser.add_argument("--epochs", type=positive_int, default=TrainConfig.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=positive_float, default=TrainConfig.lr)
    parser.add_argument(
        "--patience", type=positive_int, default=TrainConfig.patience, help="early-stopping patience (epochs)"
    )
    parser.add_argument("--no-augment", action="store_true", help="train without colour/sharpness/shift augmentation")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--device", default=DEFAULT_DEVICE, help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    configure_cpu_allocator()  # reused batch buffers: augmentation about 2x faster on a CPU
    try:
        if args.architecture != "small_cnn" and args.backbone_weights is None:
            raise RewardModelConfigError(
                f"--architecture {args.architecture} needs --backbone-weights (no download at run time)"
            )
        resolve_device(args.device)  # before the data is read: a device that cannot be used fails at once
        dataset = concatenate([RewardDataset.load(path) for path in args.datasets])
        test = RewardDataset.load(args.test) if args.test else None
        prepare_out_dir(args.out)
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            patience=args.patience,
            val_fraction=args.val_fraction,
            split_by=args.split,
            seed=args.seed,
            augment=not args.no_augment,
            device=args.device,
        )
        result = train(
            dataset,
            RewardModelConfig(architecture=args.architecture),
            config,
            test=test,
            backbone_weights=args.backbone_weights,
            out_dir=args.out,
            progress=not args.no_progress,
        )
    except (DatasetError, RewardModelConfigError, ModelWeightsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # writing the model (a full disk, a directory removed under it)
        print(f"error: --out {args.out}: cannot write the model ({err})", file=sys.stderr)
        return 2
    for name, report in result.reports.items():
        print(format_report(report, name))
    print(f"best epoch {result.best_epoch}, threshold {result.classifier.threshold:.2f}, {result.seconds:.0f} s")
    print(f"model written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
