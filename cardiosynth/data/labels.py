"""The segmentation labels, ACDC's: 0 background, 1 RV, 2 MYO (LV myocardium), 3 LV (cavity).

Every mask in the project uses them: ACDC's ground truth, the segmenter's output and the measurements on both.
"""

BACKGROUND, RV, MYO, LV = 0, 1, 2, 3
LABEL_NAMES = {RV: "RV", MYO: "MYO", LV: "LV"}
STRUCTURES = (RV, MYO, LV)
