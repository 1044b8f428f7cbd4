/* Streams a text through models/pronoun.lstm one token per lstmrt_step
 * call, as a device would feed it one frame at a time, and prints the
 * prediction the way `lstm-run --text` does ("Prediction: he (83.3%)").
 *
 *   cc -O2 -I include examples/c/stream.c -L target/release -llstmrt_capi -o stream
 *   LD_LIBRARY_PATH=target/release ./stream models/pronoun.lstm "Anna found a map. Later"
 *
 * tools/c_examples.sh builds this and checks its line against lstm-run's. */
#include <stdio.h>
#include <stdlib.h>

#include "lstmrt.h"

static int fail(const char *what, lstmrt_status status) {
    fprintf(stderr, "%s: %s: %s\n", what, lstmrt_status_name((uint32_t)status), lstmrt_last_error());
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
        return 2;
    }
    lstmrt_model *model = NULL;
    lstmrt_state *state = NULL;
    uint32_t *ids = NULL;
    float *x = NULL, *y = NULL, *probs = NULL;
    int code = 2;
    lstmrt_status s = lstmrt_model_open(argv[1], &model);
    if (s != LSTMRT_OK) return fail("open", s);

    size_t n_in = lstmrt_model_input_size(model), n_out = lstmrt_model_output_size(model);
    size_t n_head = lstmrt_model_head_size(model), tokens = 0;
    /* First ask for the count, then tokenize into a buffer of that size. */
    s = lstmrt_tokenize(model, argv[2], NULL, 0, &tokens);
    if (s != LSTMRT_OK && s != LSTMRT_BUFFER_TOO_SMALL) { code = fail("tokenize", s); goto out; }
    if (tokens == 0 || n_head == 0) { fprintf(stderr, "no tokens, or no head\n"); goto out; }
    ids = malloc(tokens * sizeof *ids);
    x = malloc(n_in * sizeof *x);
    y = malloc(n_out * sizeof *y);
    probs = malloc(n_head * sizeof *probs);
    if (!ids || !x || !y || !probs) { fprintf(stderr, "out of memory\n"); goto out; }
    if ((s = lstmrt_tokenize(model, argv[2], ids, tokens, &tokens)) != LSTMRT_OK) { code = fail("tokenize", s); goto out; }

    if ((s = lstmrt_state_new(model, 1, &state)) != LSTMRT_OK) { code = fail("state", s); goto out; }
    for (size_t t = 0; t < tokens; t++) {
        if ((s = lstmrt_token_input(model, ids[t], x)) != LSTMRT_OK) { code = fail("token", s); goto out; }
        if ((s = lstmrt_step(model, state, x, y)) != LSTMRT_OK) { code = fail("step", s); goto out; }
    }
    if ((s = lstmrt_head(model, y, probs)) != LSTMRT_OK) { code = fail("head", s); goto out; }

    size_t best = 0;
    for (size_t i = 1; i < n_head; i++)
        if (probs[i] > probs[best]) best = i;
    char label[256];
    size_t len = 0;
    if ((s = lstmrt_head_label(model, best, label, sizeof label, &len)) != LSTMRT_OK) { code = fail("label", s); goto out; }
    printf("Prediction: %s (%.1f%%)\n", label, probs[best] * 100.0);
    code = 0;
out:
    free(ids); free(x); free(y); free(probs);
    lstmrt_state_free(state);
    lstmrt_model_free(model);
    return code;
}
