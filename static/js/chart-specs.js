// What each chart shows: its traces (record keys), its axes, and its key on the compare page.
import { hiddenKey, layerKey } from "./vocabulary.js";

// Axis kinds. `positive` axes may switch to log; `fixed` ones never change range.
const linear = (title) => ({ title, type: "linear", positive: false });
const positive = (title) => ({ title, type: "linear", positive: true });
const logAxis = (title) => ({ title, type: "log", positive: true });

export const CHARTS = [
  {
    id: "loss", title: "Loss",
    help: "How wrong the network's answers are: lower is better. The train line is measured on each batch as it trains (so it is noisy); held-out is measured at the end of every epoch on examples the network never trains on. If train keeps falling while held-out rises, the network is memorising. The first steps' loss can be far higher than the rest; the axis is fitted to what comes after the first epoch unless you tick \"show early spikes\".",
    traces: () => [{ key: "loss", name: "train (batch)" }, { key: "test_loss", name: "held-out" }],
    compare: () => ({ key: "loss", label: "train loss (batch)" }),
    axes: { y: { ...positive("loss"), robust: true } },
  },
  {
    id: "accuracy", title: "Accuracy",
    help: "The share of answers that are right (for addition: the share of output bits that are right). Train is measured on each batch, held-out on examples the network never trains on. A rule that cannot learn the task stays near chance: 0.5 for bits, 0.1 for ten digits.",
    traces: () => [{ key: "accuracy", name: "train (batch)" }, { key: "test_accuracy", name: "held-out" }],
    compare: () => ({ key: "test_accuracy", label: "held-out accuracy" }),
    axes: { y: { ...linear("accuracy"), range: [0, 1.02] } },
  },
  {
    id: "fidelity", title: "Gradient fidelity",
    help: "Each hidden layer learns from a signal that stands in for the true gradient, the direction backprop would give; this chart compares the two on the same batch. Cosine near 1: the signal points where the true gradient does, so the layer learns the right thing. Near 0: the layer is learning from noise; below 0: it is pushed the wrong way. Relative error and norm ratio (right axis, log) say how far off its size is: a norm ratio of 0.001 means the signal is a thousand times too small to matter. With backprop the cosine is exactly 1.",
    traces: (l) => [
      { key: hiddenKey("cos", l), name: "cosine", axis: "y" },
      { key: hiddenKey("rel_err", l), name: "relative error", axis: "y2" },
      { key: hiddenKey("norm_ratio", l), name: "norm ratio", axis: "y2" },
    ],
    compare: (l) => ({ key: hiddenKey("cos", l), label: `cosine, hidden layer ${l}` }),
    axes: { y: { ...linear("cosine"), range: [-1.05, 1.05], fixed: true }, y2: logAxis("relative error, norm ratio") },
    // A relative error pinned at 1 is a flat line that looks like nothing: say what it means.
    note: (traces) => {
      const rel = traces.find((t) => t.key.startsWith("rel_err"));
      const recent = rel ? rel.y.slice(-50).filter((v) => v !== null && Number.isFinite(v)) : [];
      const middle = [...recent].sort((a, b) => a - b)[recent.length >> 1];
      const near = recent.filter((v) => Math.abs(v - 1) < 0.15).length;
      if (recent.length < 10 || Math.abs(middle - 1) > 0.05 || near < 0.9 * recent.length) return "";
      return "relative error stays at 1: the signal carries almost nothing of the true gradient (as if it were zero); the norm ratio says how big it is";
    },
  },
  {
    id: "weights", title: "Weights",
    help: "How big the layer's weights are (norm, standard deviation) and how much each step changes them (update ratio: size of the change over size of the weights). An update ratio far below 0.0001 means the layer has almost stopped learning; far above 0.01 means steps are large and training may become unstable.",
    traces: (l) => [
      { key: layerKey("w_norm", l), name: "norm", axis: "y" },
      { key: layerKey("w_std", l), name: "std", axis: "y" },
      { key: layerKey("update_ratio", l), name: "update ratio", axis: "y2" },
    ],
    compare: (l) => ({ key: layerKey("w_norm", l), label: `weight norm, layer ${l}` }),
    compareAll: true, // every trace per run on the compare page
    axes: { y: logAxis("norm, std"), y2: logAxis("update ratio") },
  },
  {
    id: "module", title: "Module loss",
    help: "Each DNI layer has a small module that predicts its gradient. The module itself learns by comparing its prediction with the gradient the layer above sends back a step later. This is the module's error: it falling means the predictions get better at matching that target. A low module loss with a low cosine means the module has learned to predict a target that is itself uninformative.",
    traces: (l) => [{ key: hiddenKey("module_loss", l), name: "module loss" }],
    compare: (l) => ({ key: hiddenKey("module_loss", l), label: `module loss, hidden layer ${l}` }),
    // Log by default: the loss falls by orders of magnitude and is flat at 0 on a linear axis.
    axes: { y: logAxis("module loss") },
    only: (run) => run.config.method === "dni" || run.config.method === "cdni",
  },
];
