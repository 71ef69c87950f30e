"""sigerec: graph-based multimodal recommendation (SIGE and baselines)."""

import os

# Idle OpenMP workers otherwise spin at full speed between torch's parallel regions and
# starve the single-threaded steps (sampling, scipy products) on small machines: on 2 cores
# a LightGCN epoch on Baby took 15.6 s with spinning workers and 2.7 s with passive ones.
# It only takes effect when sigerec is imported before torch (as the CLI does).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
