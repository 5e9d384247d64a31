"""`make demo` until the identification workflow lands: build, simulate and certify each model."""

import jax
import jax.numpy as jnp
import numpy as np

import r2dn
from r2dn.certificates import check_lmi, contraction_rate, lipschitz_lower_bound


def main() -> None:
    key = jax.random.key(0)
    models = {
        "ContractingR2DN": r2dn.ContractingR2DN(2, 8, 6, 3, (16, 16), alpha_bar=0.95, key=key),
        "LipschitzR2DN(γ=2)": r2dn.LipschitzR2DN(2, 8, 6, 3, (16, 16), gamma=2.0, key=key),
        "RobustR2DN": r2dn.RobustR2DN(
            2, 8, 6, 2, (16,), Q=-np.eye(2), S=0.1 * np.ones((2, 2)), R=np.eye(2), key=key
        ),
    }
    u = jax.random.normal(key, (4, 100, 2))
    for name, model in models.items():
        _, y = model.simulate(model.initial_state(4), u)
        lmi = check_lmi(model)
        rate = contraction_rate(model, jnp.ones(model.nx), -jnp.ones(model.nx), u[0])
        line = (
            f"{name:22s} y{tuple(y.shape)}  LMI λmax={lmi.max_eigenvalue:.2e} "
            f"holds={lmi.holds}  max contraction ratio={float(rate):.3f}"
        )
        if model.supply is not None and model.supply.gamma is not None:
            bound = lipschitz_lower_bound(model, key=key, steps=100)
            line += f"  adversarial gain={bound:.3f} ≤ γ={model.supply.gamma}"
        print(line)


if __name__ == "__main__":
    main()
