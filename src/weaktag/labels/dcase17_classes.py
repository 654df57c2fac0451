"""The 17 classes of DCASE 2017 Task 4 (used by SL-DCASE-17, and by the weak-label splitter for
the names that hold a comma)."""

from __future__ import annotations

from .audioset import AudioSetClass

# sound_event_list_17_classes.txt in file order (verified against the file by the tests).
DCASE17_CLASS_LIST: tuple[AudioSetClass, ...] = tuple(
    AudioSetClass(i, mid, name)
    for i, (mid, name) in enumerate(
        [
            ("/m/0284vy3", "Train horn"),
            ("/m/05x_td", "Air horn, truck horn"),
            ("/m/02mfyn", "Car alarm"),
            ("/m/02rhddq", "Reversing beeps"),
            ("/m/0199g", "Bicycle"),
            ("/m/06_fw", "Skateboard"),
            ("/m/012n7d", "Ambulance (siren)"),
            ("/m/012ndj", "Fire engine, fire truck (siren)"),
            ("/m/0dgbq", "Civil defense siren"),
            ("/m/04qvtq", "Police car (siren)"),
            ("/m/03qc9zr", "Screaming"),
            ("/m/0k4j", "Car"),
            ("/t/dd00134", "Car passing by"),
            ("/m/01bjv", "Bus"),
            ("/m/07r04", "Truck"),
            ("/m/04_sv", "Motorcycle"),
            ("/m/07jdr", "Train"),
        ]
    )
)
#: The 17 DCASE 2017 Task 4 class names in the official order (pass as ``classes=``).
DCASE17_CLASSES: tuple[str, ...] = tuple(c.display_name for c in DCASE17_CLASS_LIST)
