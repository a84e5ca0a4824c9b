//! The browser entry point: hydrates the server-rendered dashboard.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Waits for the opened page's WASM chunk, then hydrates.
    leptos::mount::hydrate_lazy(app::App);
}
