"""Shared pieces every part of spanbert uses: errors, atomic writes, data sources, checkpoints, run folders, precision."""
