// The browser tests' checks. Each check prints one line, PASS or FAIL, with
// its name; the run ends with the count of each. A test is a list of named
// steps: a step that throws fails as a check of its own, and the next step
// still runs.
const counts = { passed: 0, failed: 0 };

export function check(name, ok, detail = '') {
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name}${detail ? `: ${detail}` : ''}`);
  counts[ok ? 'passed' : 'failed'] += 1;
  return ok;
}

// Runs `steps` (named async functions of `state`) in order.
export async function runSteps(label, steps, state) {
  for (const step of steps) {
    try {
      await step(state);
    } catch (e) {
      check(`${label}: the step ${step.name} ran to the end`, false, e.stack || e.message);
    }
  }
}

export function summary() {
  return `${counts.passed} passed, ${counts.failed} failed`;
}

export function allPassed() {
  return counts.failed === 0;
}
