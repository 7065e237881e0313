//! QuiverDB in the browser.
