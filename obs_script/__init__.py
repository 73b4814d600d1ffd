"""OBS Studio glue for the face swap engine: load obs_script/face_swap.py in Tools > Scripts."""
