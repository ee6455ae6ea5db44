"""Checks for scripts/gpu-check.sh. Prints a JSON verdict; exit status 1 when a check fails.

  compare.py goldens EMBED_JSON GOLDEN_DIR   fdb embed --json of unit/{obama,biden}_160.png and the
                                             e2e crops vs the reference embeddings (max |diff| < 1e-4)
  compare.py detect DEVICE_JSON CPU_JSON     fdb detect --json on the device vs the CPU run:
                                             same faces, boxes and landmarks within 0.05 px, probs 1e-4
"""
import json, os, sys

EMBED_TOL = 1e-4  # the goldens' own fp32 tolerance, the same as the CPU tests
PX_TOL, PROB_TOL = 0.05, 1e-4  # fp32 summation order differs on a GPU: sub-pixel, not bit-exact


def goldens(embed_json, golden_dir):
    unit = json.load(open(os.path.join(golden_dir, "unit", "facenet_20180408_obama.json")))
    expected = {"obama_160.png": unit["embedding_fixed"], "biden_160.png": unit["biden_embedding_fixed"]}
    e2e = json.load(open(os.path.join(golden_dir, "e2e", "golden_e2e.json")))
    for image in e2e["images"]:
        expected[os.path.basename(image["crop_png"])] = image["embedding"]
    rows, worst = [], 0.0
    for row in json.load(open(embed_json)):
        name = os.path.basename(row["path"])
        if name not in expected:
            continue
        if "embedding" not in row:
            rows.append({"image": name, "error": row.get("error")})
            worst = float("inf")
            continue
        diff = max(abs(a - b) for a, b in zip(row["embedding"], expected.pop(name)))
        worst = max(worst, diff)
        rows.append({"image": name, "max_abs_diff": diff})
    ok = not expected and worst < EMBED_TOL
    return {"check": "embedder goldens", "images": len(rows), "missing": sorted(expected),
            "max_abs_diff": worst, "tolerance": EMBED_TOL, "ok": ok, "rows": rows}


def detect(device_json, cpu_json):
    cpu = {os.path.basename(r["path"]): r for r in json.load(open(cpu_json))}
    rows, ok, worst_px, worst_prob = [], True, 0.0, 0.0
    for r in json.load(open(device_json)):
        name = os.path.basename(r["path"])
        ref = cpu.pop(name, None)
        if ref is None or ("faces" in r) != ("faces" in ref) or len(r.get("faces", [])) != len(ref.get("faces", [])):
            ok = False
            rows.append({"image": name, "error": "face count or error differs from the CPU run"})
            continue
        px = max([0.0] + [abs(a - b) for f, g in zip(r["faces"], ref["faces"])
                          for a, b in zip(f["box"] + sum(f["landmarks"], []), g["box"] + sum(g["landmarks"], []))])
        prob = max([0.0] + [abs(f["prob"] - g["prob"]) for f, g in zip(r["faces"], ref["faces"])])
        worst_px, worst_prob = max(worst_px, px), max(worst_prob, prob)
        rows.append({"image": name, "faces": len(r.get("faces", [])), "max_px": px, "max_prob": prob})
    ok = ok and not cpu and worst_px < PX_TOL and worst_prob < PROB_TOL
    return {"check": "mtcnn vs cpu", "images": len(rows), "missing": sorted(cpu), "max_px": worst_px,
            "max_prob": worst_prob, "tolerance_px": PX_TOL, "tolerance_prob": PROB_TOL, "ok": ok, "rows": rows}


if __name__ == "__main__":
    verdict = {"goldens": goldens, "detect": detect}[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(verdict, indent=1))
    sys.exit(0 if verdict["ok"] else 1)
