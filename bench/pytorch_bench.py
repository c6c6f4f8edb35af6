#!/usr/bin/python3
"""The PyTorch side of xgrad's benchmarks: the same workloads, the same models written the
efficient way (encoder keys projected once per batch, output projection batched over time;
the Transformer with torch.nn's own stacks, and decoding as nn.Transformer allows it, by
re-running the decoder on the prefix),
on the batches and initial weights that xgrad-bench exported, printing the same JSON line.

    OMP_NUM_THREADS=N OPENBLAS_NUM_THREADS=B python3 pytorch_bench.py --workload NAME \
        --threads N [--blas-threads B] --import DIR [--steps N] [--warmup N]

--threads is PyTorch's intra-op thread count (torch.set_num_threads), --blas-threads the
number of OpenBLAS threads (default: the same). They are separate pools: torch.set_num_threads
does not reach Debian's pthreads OpenBLAS, which reads OPENBLAS_NUM_THREADS once, when torch
loads it, so the variable must say the same as --blas-threads. One intra-op thread with two
OpenBLAS threads uses both cores without oversubscribing them.

With --ranks N (the training workloads) it trains data-parallel as PyTorch users do, with
DistributedDataParallel over Gloo: N processes on this machine, each with --threads intra-op
threads, each taking every N-th row of every exported batch, as xgrad-bench under mpirun
does.

Run it with Debian's python3-torch (1.13). Each model's parameter names equal xgrad's, so the
exported safetensors load with load_state_dict(strict=True)."""

import argparse
import json
import math
import os
import resource
import struct
import time

import numpy
import torch
import torch.nn.functional as F

DTYPES = {"F32": numpy.float32, "F64": numpy.float64, "I64": numpy.int64}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) from a safetensors file."""
    with open(path, "rb") as file:
        data = file.read()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    metadata = header.pop("__metadata__", {})
    start = 8 + header_length
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = numpy.frombuffer(data[start + begin:start + end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


class AdditiveAttention(torch.nn.Module):
    def __init__(self, query_size, key_size, attention_size):
        super().__init__()
        self.query_projection = torch.nn.Linear(query_size, attention_size, bias=False)
        self.key_projection = torch.nn.Linear(key_size, attention_size)
        self.score = torch.nn.Linear(attention_size, 1, bias=False)

    def attend(self, query, projected_keys, values, padding):
        """query [B, Q], projected_keys [B, S, A], values [B, S, D], padding [B, S] (True = pad)."""
        scores = self.score(torch.tanh(self.query_projection(query).unsqueeze(1) + projected_keys)).squeeze(2)
        weights = torch.softmax(scores.masked_fill(padding, float("-inf")), dim=1)
        return torch.bmm(weights.unsqueeze(1), values).squeeze(1), weights


class Seq2Seq(torch.nn.Module):
    """xgrad's models::Seq2Seq with GRU cells and additive attention (Bahdanau order)."""

    def __init__(self, c):
        super().__init__()
        memory = 2 * c["encoder_hidden"]
        self.source_embedding = torch.nn.Embedding(c["source_vocabulary"], c["embedding_size"], padding_idx=c["pad_id"])
        self.target_embedding = torch.nn.Embedding(c["target_vocabulary"], c["embedding_size"], padding_idx=c["pad_id"])
        self.dropout = torch.nn.Dropout(c["dropout"])
        self.encoder = torch.nn.GRU(c["embedding_size"], c["encoder_hidden"], num_layers=c["encoder_layers"],
                                    bidirectional=True, batch_first=True)
        self.bridge = torch.nn.Linear(memory, c["decoder_hidden"])
        self.decoder = torch.nn.GRUCell(c["embedding_size"] + memory, c["decoder_hidden"])
        self.attention = AdditiveAttention(c["decoder_hidden"], memory, c["decoder_hidden"])
        self.output = torch.nn.Linear(c["decoder_hidden"] + memory + c["embedding_size"], c["target_vocabulary"])
        self.sos, self.eos = c["sos_id"], c["eos_id"]

    def encode(self, source, lengths):
        embedded = self.dropout(self.source_embedding(source))
        packed = torch.nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=source.shape[1])
        padding = torch.arange(source.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        hidden = torch.tanh(self.bridge(torch.cat([final[-2], final[-1]], dim=1)))
        return outputs, self.attention.key_projection(outputs), padding, hidden

    def step(self, embedded, outputs, keys, padding, hidden):
        context, weights = self.attention.attend(hidden, keys, outputs, padding)
        hidden = self.decoder(torch.cat([embedded, context], dim=1), hidden)
        return torch.cat([hidden, context, embedded], dim=1), hidden, weights

    def loss(self, source, lengths, target_inputs, target_outputs):
        outputs, keys, padding, hidden = self.encode(source, lengths)
        embedded = self.dropout(self.target_embedding(target_inputs))
        features = []
        for t in range(target_inputs.shape[1]):
            feature, hidden, _ = self.step(embedded[:, t], outputs, keys, padding, hidden)
            features.append(feature)
        rows = torch.stack(features, dim=1).reshape(-1, features[0].shape[1])
        targets = target_outputs.reshape(-1)
        real = targets != 0
        return F.cross_entropy(self.output(rows[real]), targets[real], label_smoothing=0.1)

    def greedy(self, source, lengths, ratio=2.0, extra=10):
        """Decoder steps taken per sentence, stopping at <eos> or after ratio * S + extra steps."""
        outputs, keys, padding, hidden = self.encode(source, lengths)
        limits = (ratio * lengths.double()).long() + extra
        previous = torch.full((source.shape[0],), self.sos, dtype=torch.long)
        done = torch.zeros(source.shape[0], dtype=torch.bool)
        steps = torch.zeros(source.shape[0], dtype=torch.long)
        for t in range(int(limits.max())):
            embedded = self.target_embedding(previous)
            feature, hidden, _ = self.step(embedded, outputs, keys, padding, hidden)
            previous = torch.log_softmax(self.output(feature), dim=1).argmax(dim=1)
            steps += (~done).long()
            done |= (previous == self.eos) | (t + 1 >= limits)
            if bool(done.all()):
                break
        return int(steps.sum())


class Classifier(torch.nn.Module):
    """xgrad's models::SequenceClassifier with an LSTM encoder and additive pooling."""

    def __init__(self, c):
        super().__init__()
        states = c["hidden_size"] * (2 if c["bidirectional"] else 1)
        self.query = torch.nn.Parameter(torch.zeros(1, 1, c["attention_size"]))
        self.embedding = torch.nn.Embedding(c["vocabulary"], c["embedding_size"], padding_idx=c["pad_id"])
        self.dropout = torch.nn.Dropout(c["dropout"])
        self.encoder = torch.nn.LSTM(c["embedding_size"], c["hidden_size"], num_layers=c["layers"],
                                     bidirectional=c["bidirectional"], batch_first=True)
        self.pooling = AdditiveAttention(c["attention_size"], states, c["attention_size"])
        self.output = torch.nn.Linear(states, c["classes"])

    def loss(self, tokens, lengths, labels):
        embedded = self.dropout(self.embedding(tokens))
        packed = torch.nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.encoder(packed)
        states, _ = torch.nn.utils.rnn.pad_packed_sequence(states, batch_first=True, total_length=tokens.shape[1])
        padding = torch.arange(tokens.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        query = self.query.expand(tokens.shape[0], 1, -1).squeeze(1)
        pooled, _ = self.pooling.attend(query, self.pooling.key_projection(states), states, padding)
        return F.cross_entropy(self.output(self.dropout(pooled)), labels)


class TransformerTranslator(torch.nn.Module):
    """xgrad's models::TransformerTranslator with torch.nn's Transformer stacks (its options as
    xgrad-bench exports them: pre-norm, sinusoidal positions, tied output)."""

    def __init__(self, c):
        super().__init__()
        assert c["positions"] == "sinusoidal" and c["tie_output"] and not c["share_embeddings"]
        d, self.pad, self.sos, self.eos = c["model_size"], c["pad_id"], c["sos_id"], c["eos_id"]
        self.scale = d ** 0.5
        self.source_embedding = torch.nn.Embedding(c["source_vocabulary"], d, padding_idx=self.pad)
        self.target_embedding = torch.nn.Embedding(c["target_vocabulary"], d, padding_idx=self.pad)

        def layer(kind):
            return kind(d, c["heads"], c["feedforward_size"], c["dropout"], activation=c["activation"],
                        layer_norm_eps=c["layer_norm_eps"], batch_first=True, norm_first=c["norm_first"])

        self.encoder = torch.nn.TransformerEncoder(layer(torch.nn.TransformerEncoderLayer), c["encoder_layers"],
                                                   norm=torch.nn.LayerNorm(d, eps=c["layer_norm_eps"]))
        self.decoder = torch.nn.TransformerDecoder(layer(torch.nn.TransformerDecoderLayer), c["decoder_layers"],
                                                   norm=torch.nn.LayerNorm(d, eps=c["layer_norm_eps"]))
        self.dropout = torch.nn.Dropout(c["dropout"])
        self.output_bias = torch.nn.Parameter(torch.zeros(c["target_vocabulary"]))
        position = torch.arange(c["max_positions"]).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, d, 2) * (-torch.log(torch.tensor(10000.0)) / d))
        table = torch.zeros(c["max_positions"], d)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)
        self.register_buffer("positions", table, persistent=False)

    def embed(self, embedding, ids, offset=0):
        return self.dropout(embedding(ids) * self.scale + self.positions[offset:offset + ids.shape[1]])

    def encode(self, source, lengths):
        padding = torch.arange(source.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        return self.encoder(self.embed(self.source_embedding, source), src_key_padding_mask=padding), padding

    def decode(self, memory, padding, target_inputs):
        steps = target_inputs.shape[1]
        causal = torch.triu(torch.full((steps, steps), float("-inf")), diagonal=1)
        return self.decoder(self.embed(self.target_embedding, target_inputs), memory, tgt_mask=causal,
                            memory_key_padding_mask=padding)

    def loss(self, source, lengths, target_inputs, target_outputs):
        memory, padding = self.encode(source, lengths)
        decoded = self.decode(memory, padding, target_inputs)
        targets = target_outputs.reshape(-1)
        real = targets != self.pad
        rows = decoded.reshape(-1, decoded.shape[-1])[real]
        return F.cross_entropy(F.linear(rows, self.target_embedding.weight, self.output_bias), targets[real],
                               label_smoothing=0.1)

    def greedy(self, source, lengths, ratio=2.0, extra=10):
        """Decoder steps taken, re-running the decoder on the whole prefix at every step (what
        nn.Transformer offers: it has no key/value cache)."""
        memory, padding = self.encode(source, lengths)
        limits = (ratio * lengths.double()).long() + extra
        prefix = torch.full((source.shape[0], 1), self.sos, dtype=torch.long)
        done = torch.zeros(source.shape[0], dtype=torch.bool)
        steps = torch.zeros(source.shape[0], dtype=torch.long)
        for t in range(int(limits.max())):
            last = self.decode(memory, padding, prefix)[:, -1]
            previous = torch.log_softmax(F.linear(last, self.target_embedding.weight, self.output_bias), dim=1).argmax(dim=1)
            steps += (~done).long()
            done |= (previous == self.eos) | (t + 1 >= limits)
            if bool(done.all()):
                break
            prefix = torch.cat([prefix, previous.unsqueeze(1)], dim=1)
        return int(steps.sum())


def sinusoids(length, width):
    """xgrad's 1-D sinusoidal table [length, width]: sin and cos of pos * exp(2i * -ln(10000) / width)."""
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table.float()


class ConvolutionBlock(torch.nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm = torch.nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class ImageClassifier(torch.nn.Module):
    """xgrad's models::ImageClassifier with the convolution stem: stages of 3x3 convolutions
    with batch norm and ReLU, each stage ending in a 2x2 max-pool, channels doubling up to
    model_size; DETR's 2-D sinusoidal positions (row, then column) and a pre-norm
    nn.TransformerEncoder over the regions; a learned query's additive attention pools them."""

    def __init__(self, c):
        super().__init__()
        assert c["stem"] == "convolution" and c["encoder_layers"] > 0
        d, self.per_stage = c["model_size"], c["convolutions_per_stage"]
        blocks, channels = [], c["channels"]
        for stage in range(c["stages"]):
            for _ in range(self.per_stage):
                blocks.append(ConvolutionBlock(channels, d >> (c["stages"] - 1 - stage)))
                channels = d >> (c["stages"] - 1 - stage)
        self.stem = torch.nn.ModuleList(blocks)
        layer = torch.nn.TransformerEncoderLayer(d, c["heads"], c["feedforward_size"], c["dropout"], batch_first=True,
                                                 norm_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, c["encoder_layers"], norm=torch.nn.LayerNorm(d))
        self.query = torch.nn.Parameter(torch.zeros(1, 1, c["attention_size"]))
        self.pooling = AdditiveAttention(c["attention_size"], d, c["attention_size"])
        self.dropout = torch.nn.Dropout(c["dropout"])
        self.output = torch.nn.Linear(d, c["classes"])
        rows, columns = c["height"] >> c["stages"], c["width"] >> c["stages"]
        half = d // 2
        table = torch.cat([sinusoids(rows, half).repeat_interleave(columns, dim=0),
                           sinusoids(columns, half).repeat(rows, 1)], dim=1)
        self.register_buffer("positions", table, persistent=False)

    def loss(self, images, labels):
        x = images
        for k, block in enumerate(self.stem):
            x = block(x)
            if (k + 1) % self.per_stage == 0:
                x = F.max_pool2d(x, 2)
        regions = x.flatten(2).transpose(1, 2)
        regions = self.encoder(self.dropout(regions + self.positions))
        query = self.query.expand(images.shape[0], 1, -1).squeeze(1)
        no_padding = torch.zeros(regions.shape[:2], dtype=torch.bool)
        pooled, _ = self.pooling.attend(query, self.pooling.key_projection(regions), regions, no_padding)
        return F.cross_entropy(self.output(self.dropout(pooled)), labels)


def batches(path, count, fields):
    tensors, _ = read_safetensors(path)
    return [[tensors[f"batch.{i}.{field}"] for field in fields] for i in range(count)]


def load_model(kind, path):
    weights, metadata = read_safetensors(path)
    model = kind(json.loads(metadata["config"]))
    model.load_state_dict(weights, strict=True)
    return model


def timed(warmup, steps, step):
    for i in range(warmup):
        step(i)
    tokens = 0
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        tokens += step(i)
    seconds = time.perf_counter() - start
    return {"tokens_per_s": tokens / seconds, "ms_per_step": 1000 * seconds / steps, "steps": steps}


def timed_adam_steps(parameters, loss_of, tokens_of, clip, args):
    """Timed Adam steps (rate 1e-3) with the gradient norm clipped at `clip`; loss_of(i) is
    step i's loss, tokens_of(i) what the speed counts."""
    optimizer = torch.optim.Adam(parameters, lr=1e-3)

    def step(i):
        loss = loss_of(i)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, clip)
        optimizer.step()
        return tokens_of(i)

    return timed(args.warmup, args.steps, step)


def train(model, data, loss_of, tokens_of, clip, args):
    model.eval()
    with torch.no_grad():
        check_loss = float(loss_of(data[0]))
    model.train()
    result = timed_adam_steps(list(model.parameters()), lambda i: loss_of(data[i]), lambda i: tokens_of(data[i]),
                              clip, args)
    result["check_loss"] = check_loss
    return result


class LossModule(torch.nn.Module):
    """A model whose forward is its loss: DistributedDataParallel prepares its gradient
    reduction in forward, so the loss must be computed through it."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *batch):
        return self.model.loss(*batch)


def training_workload(args):
    """(model, batches, loss of a batch, tokens of a batch, what the loss is a mean over, clip)."""
    count = args.warmup + args.steps
    if args.workload in ("seq2seq-train", "transformer-train"):
        name = args.workload.split("-")[0]
        model = load_model(Seq2Seq if name == "seq2seq" else TransformerTranslator,
                           f"{args.import_dir}/{name}-weights.safetensors")
        data = batches(f"{args.import_dir}/{name}-batches.safetensors", count,
                       ["source", "lengths", "target_inputs", "target_outputs"])
        target_tokens = lambda b: int((b[3] != 0).sum())
        return model, data, lambda b: model.loss(*b), target_tokens, target_tokens, 1.0
    if args.workload == "classifier-train":
        model = load_model(Classifier, f"{args.import_dir}/classifier-weights.safetensors")
        data = batches(f"{args.import_dir}/classifier-batches.safetensors", count, ["tokens", "lengths", "labels"])
        return model, data, lambda b: model.loss(*b), lambda b: int(b[1].sum()), lambda b: int(b[2].shape[0]), 5.0
    model = load_model(ImageClassifier, f"{args.import_dir}/image-weights.safetensors")
    data = batches(f"{args.import_dir}/image-batches.safetensors", count, ["images", "labels"])
    return model, data, lambda b: model.loss(*b), lambda b: int(b[1].shape[0]), lambda b: int(b[1].shape[0]), 5.0


def share(batch, workload, rank, ranks):
    """This rank's rows of a batch, every ranks-th from row `rank` (as DistributedSampler deals
    them, and xgrad-bench under mpirun takes them), cut to the longest sequence among them, as
    xgrad pads each rank's share to its own length."""
    part = [field[rank::ranks] for field in batch]
    if workload in ("seq2seq-train", "transformer-train"):
        source, lengths, target_inputs, target_outputs = part
        target_length = int((target_outputs != 0).sum(dim=1).max())
        part = [source[:, :int(lengths.max())], lengths, target_inputs[:, :target_length], target_outputs[:, :target_length]]
    elif workload == "classifier-train":
        tokens, lengths, labels = part
        part = [tokens[:, :int(lengths.max())], lengths, labels]
    return part


def ddp_worker(rank, args, port):
    """One rank of --ranks: DistributedDataParallel over Gloo on its share of every batch."""
    import torch.distributed as dist
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.ranks)
    model, data, loss_of, tokens_of, mean_over, clip = training_workload(args)
    mine = [share(b, args.workload, rank, args.ranks) for b in data]

    def total(value):
        tensor = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor[0])

    def weight(i):  # this rank's share of the global batch's mean
        return mean_over(mine[i]) / total(mean_over(mine[i]))

    model.eval()
    with torch.no_grad():
        check_loss = total(float(loss_of(mine[0])) * weight(0))
    model.train()
    parallel = torch.nn.parallel.DistributedDataParallel(LossModule(model))  # 25 MB buckets, overlapped with backward
    # DDP averages the ranks' gradients: each rank's loss is scaled by its share times N.
    result = timed_adam_steps(list(parallel.parameters()), lambda i: parallel(*mine[i]) * (weight(i) * args.ranks),
                              lambda i: tokens_of(mine[i]), clip, args)
    checksum = float(sum(p.double().sum() for p in model.parameters()))
    if abs(total(checksum) - args.ranks * checksum) > 1e-9 * abs(checksum):
        raise RuntimeError("the ranks' parameters differ: DDP did not reduce the gradients")
    result["tokens_per_s"] = total(result["tokens_per_s"])  # every rank timed the same synchronised steps
    result["check_loss"] = check_loss
    if rank == 0:
        print_result(result, args)
    # Gloo's teardown in torch 1.13 aborted one rank ("terminate called without an active
    # exception") and hung another at exit; once every rank is done, exit without it.
    dist.barrier()
    os._exit(0)


def train_data_parallel(args):
    """Starts the ranks; rank 0 prints the result."""
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as probe:  # a free port for the ranks to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(ddp_worker, args=(args, port), nprocs=args.ranks)


def print_result(result, args):
    result.update({"impl": "pytorch", "workload": args.workload, "threads": args.threads,
                   "blas_threads": args.blas_threads, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    if args.ranks > 1:
        result["ranks"] = args.ranks
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", required=True,
                        choices=["seq2seq-train", "classifier-train", "decode-greedy-1", "decode-greedy-1-int8", "decode-greedy-64",
                                 "transformer-train", "transformer-decode-1", "image-train", "graph-overhead", "gemm"])
    parser.add_argument("--threads", type=int, default=1, help="PyTorch's intra-op threads")
    parser.add_argument("--blas-threads", type=int, help="OpenBLAS's threads (default: --threads)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--import", dest="import_dir", help="directory xgrad-bench --export wrote")
    parser.add_argument("--ranks", type=int, default=1, help="processes training data-parallel (DDP over Gloo)")
    args = parser.parse_args()
    if args.ranks < 1:
        parser.error(f"--ranks must be at least 1, not {args.ranks}")
    if args.blas_threads is None:
        args.blas_threads = args.threads
    if os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        parser.error(f"OPENBLAS_NUM_THREADS is {os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, but --blas-threads "
                     f"is {args.blas_threads}: OpenBLAS reads the variable when torch loads, so set it to "
                     f"{args.blas_threads} in the environment")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    count = args.warmup + args.steps
    if args.ranks > 1:
        if not args.workload.endswith("-train"):
            parser.error("--ranks is for the training workloads")
        train_data_parallel(args)
        return
    elif args.workload.endswith("-train"):
        model, data, loss_of, tokens_of, _, clip = training_workload(args)
        result = train(model, data, loss_of, tokens_of, clip, args)
    elif args.workload == "transformer-decode-1":
        model = load_model(TransformerTranslator, f"{args.import_dir}/transformer-decode-1-weights.safetensors").eval()
        data = batches(f"{args.import_dir}/transformer-decode-1-batches.safetensors", count, ["source", "lengths"])
        with torch.no_grad():
            result = timed(args.warmup, args.steps, lambda i: model.greedy(*data[i]))
    elif args.workload.startswith("decode-greedy-"):
        name = "decode-" + args.workload.split("-")[2]
        model = load_model(Seq2Seq, f"{args.import_dir}/{name}-weights.safetensors").eval()
        if args.workload.endswith("-int8"):
            # PyTorch's dynamic quantisation: int8 weights with a scale per tensor, activations
            # quantised at each product (fbgemm), for the Linear layers and the decoder's GRUCell.
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear, torch.nn.GRUCell}, dtype=torch.qint8)
        data = batches(f"{args.import_dir}/{name}-batches.safetensors", count, ["source", "lengths"])
        with torch.no_grad():
            result = timed(args.warmup, args.steps, lambda i: model.greedy(*data[i]))
    elif args.workload == "graph-overhead":
        x = torch.ones(1, requires_grad=True)

        def chain(_):
            y = x
            for _ in range(1000000):
                y = y * 1.0000001
            y.backward()
            x.grad = None
            return 1000000

        result = timed(1, args.steps, chain)
    else:
        a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
        result = timed(1, args.steps, lambda _: (torch.mm(a, b), 0)[1])
        result["gflop_per_step"] = 2 * 2048 ** 3 / 1e9
    print_result(result, args)


if __name__ == "__main__":
    main()
