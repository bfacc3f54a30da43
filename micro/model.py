"""The 2D binary Lennard-Jones glass-former of the paper (Lancon-Billard type) and its LAMMPS set-up."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from epmsweep.engine import ParameterError
from epmsweep.engine.errors import check_positive

GOLDEN_RATIO_QUARTER = (1 + math.sqrt(5)) / 4
PAPER_DENSITY = 102400 / 316.174**2
POTENTIALS = ("shifted", "smooth")
TYPES = {"L": 1, "S": 2}


@dataclass(frozen=True)
class GlassModel:
    """Species L and S of unit mass; LJ units of sigma_LS, eps_LS and sqrt(m sigma_LS^2 / eps_LS).

    Parameters
    ----------
    density : float
        Number density N / A (1 / sigma_LS^2); the paper's 102400 / 316.174^2 = 1.0243.
    ratio : float
        Number ratio N_L / N_S, (1 + sqrt 5) / 4.
    cutoff : float
        Pair cutoff in units of the pair's sigma (2.5).
    potential : {"shifted", "smooth"}
        "shifted": LJ truncated at the cutoff and shifted to zero energy there (LAMMPS ``lj/cut``,
        ``pair_modify shift yes``); "smooth": force and energy both go to zero at the cutoff
        (``lj/smooth/linear``).
    dt : float
        MD time step (0.005).
    """

    density: float = PAPER_DENSITY
    ratio: float = GOLDEN_RATIO_QUARTER
    cutoff: float = 2.5
    potential: str = "shifted"
    dt: float = 0.005

    def __post_init__(self) -> None:
        for name in ("density", "ratio", "cutoff", "dt"):
            check_positive(f"model.{name}", getattr(self, name))
        if self.potential not in POTENTIALS:
            raise ParameterError("model.potential", f"must be one of {POTENTIALS}, got {self.potential!r}")

    @property
    def pairs(self) -> dict[tuple[int, int], tuple[float, float]]:
        """{(type_i, type_j): (epsilon, sigma)} with L = 1, S = 2."""
        return {
            (1, 1): (0.5, 2 * math.sin(math.pi / 5)),
            (1, 2): (1.0, 1.0),
            (2, 2): (0.5, 2 * math.sin(math.pi / 10)),
        }

    @property
    def max_cutoff(self) -> float:
        return self.cutoff * max(s for _, s in self.pairs.values())

    def counts(self, n: int) -> tuple[int, int]:
        """(N_L, N_S) for ``n`` particles, N_L / N_S as close to ``ratio`` as integers allow."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ParameterError("n_particles", f"must be an integer >= 2, got {n!r}")
        n_large = round(n * self.ratio / (1 + self.ratio))
        return n_large, n - n_large

    def box_length(self, n: int) -> float:
        """Side of the square box holding ``n`` particles at the model's density."""
        return math.sqrt(n / self.density)

    def pair_commands(self, dissipation: Dissipation | None = None, seed: int = 1) -> list[str]:
        """LAMMPS commands of the interactions, with the pairwise dissipation if one is given.

        ``seed`` initialises ``dpd/ext``'s generator, whose numbers are multiplied by 0 (no noise).
        """
        lj = "lj/cut" if self.potential == "shifted" else "lj/smooth/linear"
        pairwise = dissipation is not None and dissipation.kind == "pairwise"
        rc = f"{self.max_cutoff:.12g}"
        cmds = [f"pair_style hybrid/overlay {lj} {rc} dpd/ext 0.0 {rc} {seed}" if pairwise else f"pair_style {lj} {rc}"]
        sub = f"{lj} " if pairwise else ""
        for (i, j), (eps, sig) in self.pairs.items():
            cmds.append(f"pair_coeff {i} {j} {sub}{eps:.17g} {sig:.17g} {self.cutoff * sig:.17g}")
            if pairwise:
                # A = 0 (no conservative DPD force), gamma_par = zeta, gamma_perp = 0, weight exponents 0
                # (weight 1 inside the cutoff); temperature 0: no random force.
                zeta = dissipation.zeta
                cmds.append(f"pair_coeff {i} {j} dpd/ext 0.0 {zeta:.17g} 0.0 0.0 0.0 {self.cutoff * sig:.17g}")
        if self.potential == "shifted":
            cmds.append(f"pair_modify {'pair lj/cut ' if pairwise else ''}shift yes")
        if pairwise:
            cmds.append("comm_modify vel yes")
        return cmds

    def to_attrs(self) -> dict:
        return {f"model_{k}": v for k, v in asdict(self).items()}


DISSIPATION_KINDS = ("pairwise", "particle")


@dataclass(frozen=True)
class Dissipation:
    """Microscopic dissipation of the sheared particle runs.

    ``"pairwise"`` (the paper's): F_i = -zeta sum_j (rhat_ij . v_ij) rhat_ij over the pairs inside
    the potential's cutoff (2.5 sigma_ij), without random force: LAMMPS ``pair dpd/ext`` with
    conservative amplitude 0, gamma_parallel = zeta, gamma_perpendicular = 0, weight exponent 0
    (weight 1 inside the cutoff, instead of the (1 - r/r_c)^2 of ``dpd/tstat``), temperature 0.
    Galilean invariant: the Lees-Edwards boundaries (``fix deform ... remap v``) set the flow. The
    paper writes -zeta (r_ij . v_ij) rhat_ij; read with r_ij the separation vector it carries an
    extra factor r_ij, equal to ~1 for the first neighbours (r = 0.62 ... 1.18) that dominate the
    dissipation; we use the normalised form, the standard DPD dissipative force.

    ``"particle"`` (cheaper): F_i = -zeta (v_i - u(y_i)), with u the affine streaming velocity of
    the deforming box (``fix langevin`` at temperature 0, damping time m / zeta, with the
    ``temp/deform`` bias). Imposed rate only: under the stress feedback the drag couples directly
    to the changing rate and the run oscillates violently.
    """

    kind: str = "pairwise"
    zeta: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in DISSIPATION_KINDS:
            raise ParameterError("dissipation.kind", f"must be one of {DISSIPATION_KINDS}, got {self.kind!r}")
        check_positive("dissipation.zeta", self.zeta)
