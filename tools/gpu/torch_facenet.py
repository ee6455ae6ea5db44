"""PyTorch eager baseline for scripts/gpu-check.sh: facenet_pytorch's InceptionResnetV1 with fdb's
converted weights, checked against fdb's embedding of the same crop, then timed per batch size.

Our safetensors has BatchNorm folded into conv biases; facenet_pytorch keeps BatchNorm layers, so
each gets the identity (weight 1, mean 0, var 1 - eps) and our bias. Prints one JSON object."""
import argparse, json, sys, time

import numpy as np
from PIL import Image
from safetensors.numpy import load_file

# Our block names → facenet_pytorch's (theirs count the three repeat stacks from 1).
STACKS = {"repeat.": "repeat_1.", "repeat_1.": "repeat_2.", "repeat_2.": "repeat_3."}


def their_name(ours, theirs):
    """Map one of our keys (e.g. repeat.0.branch_1.1.weight) onto the torch state dict's names."""
    for mine, torch_name in STACKS.items():
        if ours.startswith(mine):
            ours = torch_name + ours[len(mine):]
            break
    if ours.startswith("bottleneck."):
        return {"weight": "last_linear.weight", "bias": "last_bn.bias"}[ours.rsplit(".", 1)[1]]
    prefix, leaf = ours.rsplit(".", 1)
    prefix = prefix.replace("branch_", "branch")
    if prefix.endswith(".conv2d") or prefix == "conv2d":  # the residual up-projection: a plain Conv2d
        return f"{prefix}.{leaf}"
    role = "conv.weight" if leaf == "weight" else "bn.bias"
    for candidate in (f"{prefix}.{role}", f"{prefix.rsplit('.', 1)[0]}.{role}"):  # Sequential or single
        if candidate in theirs:
            return candidate
    raise KeyError(f"no place for {ours} in facenet_pytorch's model")


def load_model(torch, model_cls, weights_path):
    model = model_cls(pretrained=None, classify=False).eval()
    state = model.state_dict()
    filled = set()
    for key, value in load_file(weights_path).items():
        name = their_name(key, state)
        state[name] = torch.from_numpy(value.copy()).reshape(state[name].shape)
        filled.add(name)
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            state[f"{name}.weight"] = torch.ones_like(state[f"{name}.weight"])
            state[f"{name}.running_mean"] = torch.zeros_like(state[f"{name}.running_mean"])
            state[f"{name}.running_var"] = torch.full_like(state[f"{name}.running_var"], 1.0 - module.eps)
            filled |= {f"{name}.{p}" for p in ("weight", "running_mean", "running_var", "num_batches_tracked")}
            if f"{name}.bias" not in filled:  # a BN without a folded bias of ours (none expected)
                raise KeyError(f"{name}.bias was not in the weights")
    left = [k for k in state if k not in filled and not k.startswith("logits.")]
    if left:
        raise KeyError(f"not loaded: {left[:5]}")
    model.load_state_dict(state)
    return model


def standardised(png):
    x = (np.asarray(Image.open(png).convert("RGB"), dtype=np.float32) - 127.5) / 128.0
    return x.transpose(2, 0, 1)[None]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--facenet-pytorch", required=True, help="folder holding the facenet_pytorch package")
    p.add_argument("--weights", required=True)
    p.add_argument("--face", required=True, help="an aligned 160x160 crop (obama_160.png)")
    p.add_argument("--ours", required=True, help="fdb embed --json output for --face on the same device")
    p.add_argument("--device", default="cuda")
    p.add_argument("--batches", default="1,32,128,512")
    p.add_argument("--seconds", type=float, default=2.0)
    a = p.parse_args()
    sys.path.insert(0, a.facenet_pytorch)
    import torch
    from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

    device = torch.device(a.device)
    model = load_model(torch, InceptionResnetV1, a.weights).to(device)
    ours = np.asarray(json.load(open(a.ours))[0]["embedding"], dtype=np.float64)
    with torch.no_grad():
        theirs = model(torch.from_numpy(standardised(a.face)).to(device)).double().cpu().numpy()[0]
        cosine = float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs))
        result = {"torch": torch.__version__, "device": str(device), "cosine_vs_fdb": cosine,
                  "max_abs_diff_vs_fdb": float(np.abs(ours - theirs).max()), "bench": []}
        for batch in [int(b) for b in a.batches.split(",")]:
            x = torch.randn(batch, 3, 160, 160, device=device)
            model(x)  # warm-up
            sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
            sync()
            passes, start = 0, time.perf_counter()
            while passes == 0 or time.perf_counter() - start < a.seconds:
                model(x)
                passes += 1
            sync()
            secs = time.perf_counter() - start
            result["bench"].append({"batch": batch, "passes": passes, "faces_per_s": passes * batch / secs})
    print(json.dumps(result, indent=1))
    return 0 if cosine >= 0.999 else 1


if __name__ == "__main__":
    sys.exit(main())
