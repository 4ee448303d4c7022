import time
import numpy as np
def test_explore(toy_artifact):
    from personalize.artifact import load_artifact
    from devices.preprocess import PreprocessSpec, preprocess_batch
    a = load_artifact(toy_artifact["dir"], toy_artifact["pub"])
    print(a.manifest["input"], a.manifest["files"].keys(), a.background.shape)
    spec = PreprocessSpec.from_dict(a.manifest["input"]["preprocess"])
    it = a.interpreter()
    emb = it.get_signature_runner("embed")
    def e(x):
        out = emb(images=preprocess_batch(list(x), spec))["embeddings"]
        return out / np.linalg.norm(out, axis=1, keepdims=True)
    o = e(toy_artifact["owner"]); ot = e(toy_artifact["owner_test"]); im = e(toy_artifact["impostors"])
    bg = a.background / np.linalg.norm(a.background, axis=1, keepdims=True)
    c = o.mean(0); c /= np.linalg.norm(c)
    print("owner test", np.sort(ot @ c)[:5], "imp", np.sort(im @ c)[-5:], "bg", np.sort(bg @ c)[-5:])
    print(a.manifest["memory_peak_bytes"]["host"], len(a.model))
