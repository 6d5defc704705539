"""One module per algorithm; each registers ``name -> (config schema, class)`` here."""
from __future__ import annotations

from ..errors import ConfigError
from .base import Algorithm, State, StepSize
from .dsgd import DSGD, DSGDConfig
from .beer import BEER, BEERConfig
from .choco import CHOCO, CHOCOConfig
from .docom import DoCoM, DoCoMConfig
from .dsgd_gd import DSGDGD, DSGDGDConfig
from .gradient_tracking import GNSD, DIGing, DIGingConfig, GNSDConfig
from .gt_hsgd import GTHSGD, GTHSGDConfig
from .swarm_sgd import SwarmSGD, SwarmSGDConfig
from .cpsgd import CPSGD, CPSGDConfig
from .fspda import FSPDA, FSPDAConfig
from .fspda_storm import FSPDAStorm, FSPDAStormConfig
from .ticopd import TiCoPD, TiCoPDConfig
from .ticopd_robust import TiCoPDRobust, TiCoPDRobustConfig

REGISTRY = {"dsgd": (DSGDConfig, DSGD)}
REGISTRY.update({"docom": (DoCoMConfig, DoCoM), "dsgd_gd": (DSGDGDConfig, DSGDGD), "choco": (CHOCOConfig, CHOCO),
                 "beer": (BEERConfig, BEER), "diging": (DIGingConfig, DIGing), "gnsd": (GNSDConfig, GNSD),
                 "gt_hsgd": (GTHSGDConfig, GTHSGD), "swarm_sgd": (SwarmSGDConfig, SwarmSGD)})
REGISTRY.update({"ticopd": (TiCoPDConfig, TiCoPD), "ticopd_robust": (TiCoPDRobustConfig, TiCoPDRobust),
                 "fspda": (FSPDAConfig, FSPDA), "fspda_storm": (FSPDAStormConfig, FSPDAStorm), "cpsgd": (CPSGDConfig, CPSGD)})
SCHEMAS = {name: schema for name, (schema, _) in REGISTRY.items()}


def algorithm_class(name: str) -> type[Algorithm]:
    if name not in REGISTRY:
        raise ConfigError(f"algo={name}: choose one of {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name][1]


def build_algorithm(cfg, net, problem, compressor) -> Algorithm:
    return algorithm_class(cfg.name)(cfg, net, problem, compressor)


__all__ = ["Algorithm", "REGISTRY", "SCHEMAS", "State", "StepSize", "algorithm_class", "build_algorithm"]
