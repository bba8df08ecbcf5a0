import numpy as np

from locksmith.data.targets import OBJECT_FIELDS, PAD_FIELDS, episode_targets
from locksmith.sim.env import env_state_dim
from locksmith.sim.scene import N_OBJECTS


def _frames(t: int) -> np.ndarray:
    x = np.zeros((t, env_state_dim(1)))
    for i in range(N_OBJECTS):
        x[:, i * OBJECT_FIELDS] = 0.2 * i  # objects at x = 0, 0.2, 0.4
    p0 = N_OBJECTS * OBJECT_FIELDS
    x[:, p0 + 1] = 0.3  # pad 0 at y = 0.3
    x[:, p0 + PAD_FIELDS + 1] = -0.3  # pad 1 at y = -0.3
    return x


def test_the_moved_object_and_the_pad_it_ends_on():
    a = _frames(5)
    a[:, OBJECT_FIELDS + 1] = np.linspace(0.0, -0.3, 5)  # object 1 carried onto pad 1 (x 0.2 vs 0: 0.2 m off)
    a[:, OBJECT_FIELDS] = np.linspace(0.2, 0.0, 5)
    b = _frames(4)  # nothing moves: the object nearest the final TCP (object 2)
    tcp = N_OBJECTS * OBJECT_FIELDS + 2 * PAD_FIELDS
    b[:, tcp] = 0.39
    objects, pads = episode_targets(np.concatenate([a, b]), np.array([0, 5]), np.array([5, 9]))
    assert objects.tolist() == [1] * 5 + [2] * 4
    assert pads.tolist() == [1] * 5 + [-1] * 4
