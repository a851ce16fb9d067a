from .face_analysis import *  # noqa: F403
