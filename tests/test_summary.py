"""jaxdl.summary: output shapes and parameter counts against hand counts."""

import jax
import numpy as np
import pytest

import jaxdl


def test_mlp_rows_and_total_by_hand():
    table = jaxdl.summary(jaxdl.models.MLP((16, 10)), np.zeros((2, 64), np.float32))
    assert [(r.path, r.kind, r.output, r.params) for r in table.rows] == [
        ("dense_0", "Dense", "(2, 16) float32", 64 * 16 + 16),
        ("output", "Dense", "(2, 10) float32", 16 * 10 + 10),
    ]
    assert table.total_params == 1210 and table.param_bytes == 4 * 1210
    text = str(table)
    assert "dense_0" in text and "parameters: 1,210" in text


def test_cnn_with_batch_norm_counts_statistics_apart():
    model = jaxdl.models.CNN((4, 8), (16,), 3, batch_norm=True)
    x = np.zeros((1, 8, 8, 1), np.float32)
    table = jaxdl.summary(model, x)
    rows = {r.path: r for r in table.rows}
    assert rows["conv_0"].params == 3 * 3 * 1 * 4  # no bias before batch norm
    assert rows["conv_1"].output == "(1, 4, 4, 8) float32"  # after one 2x2 pooling
    assert (rows["norm_1"].params, rows["norm_1"].other) == (16, 16)  # scale+bias; mean+var
    assert rows["dense_0"].params == 2 * 2 * 8 * 16 + 16  # two poolings: 8 -> 4 -> 2
    variables = jaxdl.init_variables(model, x, {"params": jax.random.key(0)})
    assert table.total_params == sum(a.size for a in jax.tree.leaves(variables["params"]))
    assert table.total_other == sum(a.size for a in jax.tree.leaves(variables["batch_stats"]))


def test_depth_lists_nested_layers_after_their_parent():
    table = jaxdl.summary(jaxdl.models.ResNet(20, 10), np.zeros((1, 32, 32, 3), np.float32), 2)
    paths = [r.path for r in table.rows]
    assert paths.index("stage0_block0") < paths.index("stage0_block0/conv_0")
    # ResNet-20 has about 0.27 million parameters (He et al., 2016, Table 6)
    assert table.total_params == 272_474
    with pytest.raises(ValueError, match="depth"):
        jaxdl.summary(jaxdl.models.MLP((2,)), np.zeros((1, 3), np.float32), depth=0)
