"""The paper's objective ablation (Joshi et al. 2020, Table 6) as one resumable grid.

    config.toml --load_config--> AblationConfig
        --cells--> pretrain/<objective> (token, whole_word, span, span_sbo; "none" = the start)
                   finetune/<task>/<objective>/seed-<s> (fine-tune with dev selection, test once)
        --run_grid--> cell.json per finished cell (a rerun does only the missing ones)
        --write_report--> results.md / .csv / .json / .png (mean ± sd, paired bootstrap vs token)

    spanbert ablate run configs/ablation/cpu-minilm.toml
    spanbert ablate status configs/ablation/cpu-minilm.toml
    spanbert ablate report configs/ablation/cpu-minilm.toml
"""

from .config import AblationConfig, load_config
from .grid import cells, grid_status, run_grid
from .report import collect, write_report

__all__ = ["AblationConfig", "cells", "collect", "grid_status", "load_config", "run_grid", "write_report"]
