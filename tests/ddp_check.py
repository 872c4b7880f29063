"""Run by tests/test_train.py under torchrun: train the negation task with DistributedDataParallel
(gloo, CPU) and let each process save what the test compares with a single-process run."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_train import ddp_task  # noqa: E402

from pipeline.train import train_model  # noqa: E402

if __name__ == "__main__":
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    model, history, summary, _ = train_model(*ddp_task())
    result = {"state_dict": model.state_dict(), "history": history, "summary": summary}
    torch.save(result, f"{sys.argv[1]}.rank{dist.get_rank()}")
    dist.destroy_process_group()
