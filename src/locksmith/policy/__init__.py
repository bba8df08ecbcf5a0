

# What the trunk predicts: each robot's own command ("native", through its own head) or shared
# intent that each robot's decoder turns into its command ("intent", `locksmith.policy.intent`).
# Here, in a module without imports, so that the command line can offer the choice cheaply.
ACTION_SPACES = ("native", "intent")
