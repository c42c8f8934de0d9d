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

from spanbert.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "config": ["AblationConfig", "load_config"],
    "grid": ["cells", "grid_status", "run_grid"],
    "report": ["collect", "write_report"],
})
