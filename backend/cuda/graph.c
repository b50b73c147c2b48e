/* graph.c: the optional ops of the cuda backend: CUDA graphs recorded by
 * stream capture, pinned host memory, asynchronous downloads and events. */
#include "internal.h"

int nc_cuda_graph_begin(nc_backend *be, nc_error *err) {
    nc_cuda *cu = nc_cuda_of(be);
    if (nc_cuda_take_error(be, err)) return -1;
    /* thread-local: other threads' cuda calls (status, memory queries) stay legal */
    if (!nc_cuda_ok(be, cudaStreamBeginCapture(cu->stream, cudaStreamCaptureModeThreadLocal), "graph capture"))
        return nc_cuda_take_error(be, err);
    cu->capturing = true;
    return 0;
}

void *nc_cuda_graph_end(nc_backend *be, nc_error *err) {
    nc_cuda *cu = nc_cuda_of(be);
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cu->capturing = false;
    bool ok = nc_cuda_ok(be, cudaStreamEndCapture(cu->stream, &graph), "graph capture");
    ok = ok && cu->error.code == NC_OK; /* an op failed while recording */
    ok = ok && nc_cuda_ok(be, cudaGraphInstantiate(&exec, graph, 0), "graph instantiate");
    if (graph) cudaGraphDestroy(graph);
    if (!ok) {
        if (exec) cudaGraphExecDestroy(exec);
        nc_cuda_take_error(be, err);
        return NULL;
    }
    return exec;
}

void nc_cuda_graph_launch(nc_backend *be, void *graph) {
    nc_cuda_ok(be, cudaGraphLaunch((cudaGraphExec_t)graph, nc_cuda_of(be)->stream), "graph launch");
}

void nc_cuda_graph_free(nc_backend *be, void *graph) {
    if (graph) nc_cuda_ok(be, cudaGraphExecDestroy((cudaGraphExec_t)graph), "graph free");
}

void *nc_cuda_host_alloc(nc_backend *be, size_t bytes) {
    void *p = NULL;
    return nc_cuda_ok(be, cudaMallocHost(&p, bytes ? bytes : 1), "pinned alloc") ? p : NULL;
}

void nc_cuda_host_free(nc_backend *be, void *p) {
    if (p) nc_cuda_ok(be, cudaFreeHost(p), "pinned free");
}

void nc_cuda_download_async(nc_backend *be, void *host, const void *src, size_t bytes) {
    if (bytes)
        nc_cuda_ok(be, cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, nc_cuda_of(be)->stream),
                   "async download");
}

void *nc_cuda_event_new(nc_backend *be) {
    cudaEvent_t ev = NULL;
    return nc_cuda_ok(be, cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "event") ? (void *)ev : NULL;
}

void nc_cuda_event_free(nc_backend *be, void *ev) {
    if (ev) nc_cuda_ok(be, cudaEventDestroy((cudaEvent_t)ev), "event free");
}

void nc_cuda_event_record(nc_backend *be, void *ev) {
    nc_cuda_ok(be, cudaEventRecord((cudaEvent_t)ev, nc_cuda_of(be)->stream), "event record");
}

int nc_cuda_event_wait(nc_backend *be, void *ev, nc_error *err) {
    nc_cuda_ok(be, cudaEventSynchronize((cudaEvent_t)ev), "event wait");
    return nc_cuda_take_error(be, err);
}
