// Type declarations for the vendored uPlot.esm.js, for the type check only (the browser
// never loads this file): uPlot's own, from the devDependency "uplot" of the same version.
import uPlot from "uplot";
export default uPlot;
