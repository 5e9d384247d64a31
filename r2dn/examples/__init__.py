"""Simulators and closed loops of the R2DN paper's experiments, as plain JAX functions.

- `r2dn.examples.pde`: the reaction–diffusion PDE and the observer's data (section 2).
- `r2dn.examples.youla`: the Youla-parameterised feedback loop and its cost (section 3).
- `r2dn.examples.scaling`: the one-step map of the scalability study (section 4).
- `r2dn.examples.drift`: a Duffing oscillator whose stiffness drifts, for online adaptation
  (`experiments/adaptation.py`; not in the paper).

Section numbers refer to the experiments note. Training lives in `r2dn.training`.
"""

from r2dn.examples import drift, pde, scaling, youla

__all__ = ["drift", "pde", "scaling", "youla"]
