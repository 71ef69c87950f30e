"""Time RecBole's own training epochs and full-sort evaluations; run by recbole_speed.py.

Runs inside RecBole's virtual environment (not sigerec's), so it imports nothing from sigerec.
Usage:

    <recbole venv>/bin/python benchmarks/recbole_runner.py CONFIG.json EPOCHS

CONFIG.json holds RecBole settings (``model``, ``dataset``, ``data_path`` and the rest). The
script builds the dataset and model as ``recbole.quick_start.run_recbole`` does, then times
``Trainer._train_epoch`` and ``Trainer.evaluate`` on the valid split once per epoch (the two
calls that ``Trainer.fit`` makes, without its checkpoint writes and logging) on one torch
thread, and prints one JSON line: the times of ``epoch_timing.time_epochs`` and a few facts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from epoch_timing import time_epochs


def main() -> None:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    settings = json.loads(Path(sys.argv[1]).read_text())
    epochs = int(sys.argv[2])
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line too
    torch.set_num_threads(1)
    config = Config(model=settings["model"], dataset=settings["dataset"], config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.eval_collector.data_collect(train_data)  # as Trainer.fit does before its first epoch

    losses, valid = [], {}

    def train_epoch(epoch: int) -> None:
        losses.append(float(trainer._train_epoch(train_data, epoch, show_progress=False)))

    def evaluate() -> None:
        valid.update(trainer.evaluate(valid_data, load_best_model=False, show_progress=False))

    times = time_epochs(train_epoch, evaluate, epochs)
    facts = {
        "losses": losses,
        "valid": {key: float(value) for key, value in valid.items()},
        "n_users": int(dataset.user_num - 1),  # RecBole reserves id 0 for padding
        "n_items": int(dataset.item_num - 1),
        "train_interactions": len(train_data.dataset),
        "train_batches": len(train_data),
        "valid_batches": len(valid_data),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print(json.dumps({**times, **facts}), flush=True)


if __name__ == "__main__":
    main()
