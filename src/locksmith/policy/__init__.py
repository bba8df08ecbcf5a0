

# What the trunk predicts: each robot's own command ("native", through its own head) or shared
# intent that each robot's decoder turns into its command ("intent", `locksmith.policy.intent`).
# Here, in a module without imports, so that the command line can offer the choice cheaply.
ACTION_SPACES = ("native", "intent")

# What an intent policy's shared stem reads of the scene (`locksmith.policy.intent.IntentFrame`):
# positions in the base frame as well as offsets ("absolute"), or only what does not depend on where
# the robot stands: offsets from each TCP and heights above the table ("relative").
INTENT_FEATURES = ("absolute", "relative")

# What a policy sees of the scene: the privileged scene state (``observation.environment_state``:
# every object's and pad's position, size and colour) or the pixels of the robot's first camera
# (`locksmith.policy.vision`), which a real robot has.
OBSERVATIONS = ("state", "pixels")
DEFAULT_IMAGE_SIZE = 64  # px, square: what a pixel policy's camera is rendered and recorded at
DEFAULT_IMAGE_SHIFT = 4  # px, how far a pixel policy's pictures are shifted at random in training
IMAGE_SIZES = (16, 512, 16)  # a pixel policy's image size: at least, at most, a multiple of (the encoder's stride)


def check_image_size(size: int) -> int:
    """``size`` when a pixel policy can read square images of it, else ValueError saying why."""
    low, high, stride = IMAGE_SIZES
    if not low <= size <= high or size % stride:
        raise ValueError(f"image_size={size} must be a multiple of {stride} between {low} and {high}")
    return size

# PolicyConfig fields added after checkpoints were published, left out of a config's JSON (and of
# a plan's prior key) while at their default, so that a policy which does not use them is written
# and digested exactly as before.
OMITTED_WHEN_DEFAULT = {"action_space": "native", "intent_features": "absolute", "observation": "state",
                        "image_size": DEFAULT_IMAGE_SIZE, "image_shift": DEFAULT_IMAGE_SHIFT, "keypoints": 0,
                        "scene_weight": 0.0, "colour_film": False}


def omit_defaults(data: dict, defaults: dict | None = None) -> dict:
    """``data`` without the ``defaults`` fields (`OMITTED_WHEN_DEFAULT` unless given) that are at
    their default."""
    defaults = OMITTED_WHEN_DEFAULT if defaults is None else defaults
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}
