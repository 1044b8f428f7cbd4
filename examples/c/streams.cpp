// C++ use of the C ABI: RAII handles, and several texts streamed together
// through one lstmrt_streams (one pass over the weights per step for all of
// them), each printed as `lstm-run --text` would.
//
//   c++ -std=c++17 -O2 -I include examples/c/streams.cpp -L target/release -llstmrt_capi -o streams
//   LD_LIBRARY_PATH=target/release ./streams models/pronoun.lstm "text one" "text two" ...
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "lstmrt.h"

namespace {

void check(lstmrt_status s, const char *what) {
    if (s != LSTMRT_OK) throw std::runtime_error(std::string(what) + ": " + lstmrt_last_error());
}

struct ModelFree { void operator()(lstmrt_model *m) const { lstmrt_model_free(m); } };
struct StreamsFree { void operator()(lstmrt_streams *s) const { lstmrt_streams_free(s); } };

}  // namespace

int main(int argc, char **argv) try {
    if (argc < 3) throw std::runtime_error("usage: streams MODEL TEXT...");
    lstmrt_model *raw = nullptr;
    check(lstmrt_model_open(argv[1], &raw), "open");
    std::unique_ptr<lstmrt_model, ModelFree> model(raw);
    const size_t n_in = lstmrt_model_input_size(model.get()), n_out = lstmrt_model_output_size(model.get());
    const size_t texts = static_cast<size_t>(argc - 2);

    std::vector<std::vector<uint32_t>> ids(texts);
    for (size_t i = 0; i < texts; i++) {
        size_t n = 0;
        lstmrt_status s = lstmrt_tokenize(model.get(), argv[i + 2], nullptr, 0, &n);
        if (s != LSTMRT_BUFFER_TOO_SMALL && s != LSTMRT_OK) check(s, "tokenize");
        ids[i].resize(n);
        check(lstmrt_tokenize(model.get(), argv[i + 2], ids[i].data(), n, &n), "tokenize");
    }

    lstmrt_streams *sraw = nullptr;
    check(lstmrt_streams_new(model.get(), texts, &sraw), "streams");
    std::unique_ptr<lstmrt_streams, StreamsFree> streams(sraw);
    std::vector<lstmrt_stream_id> id(texts);
    for (auto &i : id) check(lstmrt_streams_join(streams.get(), &i), "join");

    // Each step feeds the texts that still have a token; the others wait.
    std::vector<std::vector<float>> last(texts, std::vector<float>(n_out));
    std::vector<lstmrt_stream_id> active;
    std::vector<size_t> which;
    std::vector<float> xs, ys;
    for (size_t t = 0;; t++) {
        active.clear();
        which.clear();
        for (size_t i = 0; i < texts; i++)
            if (t < ids[i].size()) { active.push_back(id[i]); which.push_back(i); }
        if (active.empty()) break;
        xs.resize(active.size() * n_in);
        ys.resize(active.size() * n_out);
        for (size_t k = 0; k < which.size(); k++)
            check(lstmrt_token_input(model.get(), ids[which[k]][t], &xs[k * n_in]), "token");
        check(lstmrt_streams_step(model.get(), streams.get(), active.data(), active.size(), xs.data(), ys.data()), "step");
        for (size_t k = 0; k < which.size(); k++)
            std::copy(&ys[k * n_out], &ys[(k + 1) * n_out], last[which[k]].begin());
    }

    std::vector<float> probs(lstmrt_model_head_size(model.get()));
    for (size_t i = 0; i < texts; i++) {
        check(lstmrt_head(model.get(), last[i].data(), probs.data()), "head");
        size_t best = 0;
        for (size_t k = 1; k < probs.size(); k++)
            if (probs[k] > probs[best]) best = k;
        char label[256];
        size_t len = 0;
        check(lstmrt_head_label(model.get(), best, label, sizeof label, &len), "label");
        std::printf("Prediction: %s (%.1f%%)\n", label, probs[best] * 100.0);
    }
    return 0;
} catch (const std::exception &e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
}
