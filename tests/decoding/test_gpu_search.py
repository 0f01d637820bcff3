import pytest
import torch
from tiny_transducer import TinyTransducer

from gmot.decoding import (
    beam_search,
    ctc_greedy_search,
    ctc_prefix_beam_search,
    greedy_search_batch,
    modified_beam_search,
)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    model = TinyTransducer().eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(4)
    enc = torch.randn(3, 12, 6) * 2
    lens = torch.tensor([12, 7, 10])
    cpu = [
        greedy_search_batch(model, enc, lens, 2),
        modified_beam_search(model, enc, lens, 4),
        beam_search(model, enc, lens, 3),
    ]
    model_gpu = model.to("cuda")
    enc_g, lens_g = enc.cuda(), lens.cuda()
    gpu = [
        greedy_search_batch(model_gpu, enc_g, lens_g, 2),
        modified_beam_search(model_gpu, enc_g, lens_g, 4),
        beam_search(model_gpu, enc_g, lens_g, 3),
    ]
    assert cpu == gpu
    lp = torch.randn(2, 9, 5).log_softmax(-1)
    ll = torch.tensor([9, 6])
    assert ctc_greedy_search(lp.cuda(), ll.cuda()) == ctc_greedy_search(lp, ll)
    assert ctc_prefix_beam_search(lp.cuda(), ll.cuda(), 4) == ctc_prefix_beam_search(lp, ll, 4)
