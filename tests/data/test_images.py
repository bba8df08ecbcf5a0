"""Camera pictures of a dataset written directly through `LeRobotDataset.create` (as a real robot's
recorder writes them, here as LeRobot ``image`` features) load picture for picture."""

import numpy as np

from locksmith.data.loading import load_demonstrations
from locksmith.data.record import SPEC_FILE, dataset_features
from locksmith.embodiment.registry import load_robot_spec


def test_image_features_written_by_lerobot_load_losslessly_in_frame_order(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    spec = load_robot_spec("panda")
    features = dataset_features(spec, camera=True, image_size=32)
    features["observation.images.front"]["dtype"] = "image"  # PNG in the parquet files, no video
    root = tmp_path / "robot"
    dataset = LeRobotDataset.create("local/robot", fps=int(spec.control_rate_hz), features=features, root=root,
                                    robot_type="panda", use_videos=False)
    rng = np.random.default_rng(0)
    pictures = []
    for _ in range(2):
        for _ in range(4):
            picture = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            frame = {k: rng.normal(size=f["shape"]).astype(np.float32)
                     for k, f in features.items() if f["dtype"] == "float32"}
            dataset.add_frame({**frame, "observation.images.front": picture, "task": "pick up the cube"})
            pictures.append(picture)
        dataset.save_episode()
    dataset.finalize()
    (root / SPEC_FILE).write_text(spec.to_yaml())
    demos = load_demonstrations(root, images=True)
    np.testing.assert_array_equal(demos.images["observation.images.front"], np.stack(pictures))
    np.testing.assert_array_equal(demos.subset([1]).images["observation.images.front"], np.stack(pictures[4:]))
