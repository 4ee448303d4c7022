"""Server side of :mod:`devices`: what needs TensorFlow or JAX to calibrate or describe a device.

``calibrate_host`` measures this machine into ``devices/profiles/host.json`` (``python -m devices
calibrate``), ``build_reference`` converts the calibration reference artifacts, the probes time
single-layer models of each kernel class, and ``graph_from_flax`` builds the planner's layer graph
from a Flax model. The phone never imports this package (``tests/test_imports.py``).
"""

from devices.server.calibrate import calibrate_host, update_file_costs, update_speed
from devices.server.chains import write_chain, write_fanout
from devices.server.flaxgraph import graph_from_flax, layers_from_flax, signatures_for
from devices.server.probes import (
    PROBES,
    TRAIN_PROBES,
    KernelProbe,
    build_kernel_probe,
    class_efficiencies,
    convert_tf,
    measure_kernel_probes,
)
from devices.server.reference import build_reference

__all__ = [
    "PROBES",
    "TRAIN_PROBES",
    "KernelProbe",
    "build_kernel_probe",
    "build_reference",
    "calibrate_host",
    "class_efficiencies",
    "convert_tf",
    "graph_from_flax",
    "layers_from_flax",
    "measure_kernel_probes",
    "signatures_for",
    "update_file_costs",
    "update_speed",
    "write_chain",
    "write_fanout",
]
