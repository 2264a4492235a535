//! Small pieces shared by pages.

use crate::Error;
use leptos::prelude::*;

/// An error line announced to assistive technology.
#[component]
pub fn ErrorLine(#[prop(into)] error: Signal<Option<Error>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            view! {
                <p class="error" role="alert">
                    {e.message}
                </p>
            }
        })
    }
}

/// The error of the last run of a server action, if it failed.
pub fn action_error<I, O>(action: ServerAction<I>) -> Signal<Option<Error>>
where
    I: leptos::server_fn::ServerFn<Output = O, Error = Error> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(|r| r.err()))
}
