// GOV.UK Frontend's own enhancements; every page works without them.
import { initAll } from "/static/govuk/govuk-frontend.min.js";

initAll();
