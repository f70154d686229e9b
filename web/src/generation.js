// The shared generation counters between the page and the worker (an
// Int32Array over a SharedArrayBuffer, on cross-origin isolated pages): each
// slot holds the newest request id of one kind of job, written by the page
// when it asks and read by the worker while the module computes, so that a
// computation whose id is no longer the newest stops in flight.
//   slot 0: the page's attribution (explain and gallery jobs)
//   LANE_SLOTS: each view lane
export const LANE_SLOTS = { conductance: 1, tabular: 2 };
export const GENERATION_SLOTS = 3;
