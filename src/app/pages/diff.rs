use crate::api::configs::{diff_versions, list_versions};
use crate::app::components::DiffView;
use crate::model::{ConfigPath, VersionPage, VersionsQuery};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::params::ParamsMap;

/// Where the browser keeps the chosen layout of diffs (`split` or `unified`).
const LAYOUT_KEY: &str = "graycast.diff-layout";

/// Comparison of any two versions, with pickers for both, side by side or
/// unified (remembered in this browser), optionally hiding whitespace changes
/// (kept in the address, `whitespace=hide`, so a link shows the same diff).
#[component]
pub fn DiffPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let key = Memo::new(move |_| params.read().get("key").unwrap_or_default());
    let from = version_in_query(query, "from");
    let to = version_in_query(query, "to");
    let hide_whitespace =
        Memo::new(move |_| query.read().get("whitespace").as_deref() == Some("hide"));
    // The server renders side by side; the remembered layout is applied once
    // hydrated, so the server's HTML and the hydrating browser agree.
    let unified = RwSignal::new(false);
    Effect::new(move |_| {
        if stored_layout().as_deref() == Some("unified") {
            unified.set(true);
        }
    });
    // The pickers offer the newest versions (a page of the most the list gives) and the two
    // compared, whatever their age.
    let versions = Resource::new(
        move || (ns.get(), env.get(), key.get()),
        |(ns, env, key)| {
            list_versions(
                ConfigPath::new(ns, env, key),
                None,
                Some(VersionsQuery::MAX_LIMIT),
            )
        },
    );
    let diff = Resource::new(
        move || {
            (
                ns.get(),
                env.get(),
                key.get(),
                from.get(),
                to.get(),
                hide_whitespace.get(),
            )
        },
        |(ns, env, key, from, to, hide)| {
            diff_versions(ConfigPath::new(ns, env, key), from, to, hide)
        },
    );
    let navigate = use_navigate();
    let go = move |from: i64, to: i64, hide: bool| {
        navigate(
            &format!(
                "/ns/{}/{}/{}/diff?from={from}&to={to}{}",
                ns.get_untracked(),
                env.get_untracked(),
                key.get_untracked(),
                if hide { "&whitespace=hide" } else { "" }
            ),
            Default::default(),
        )
    };
    let go_from = go.clone();
    let go_whitespace = go.clone();
    let go_to = go.clone();
    view! {
        <Title text=move || format!("{} v{} → v{}", key.get(), from.get(), to.get()) />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/" exact=true>"Namespaces"</A> " / "
            <A href=move || format!("/ns/{}/{}", ns.get(), env.get()) exact=true>{ns} " · " {env}</A> " / "
            <A href=move || format!("/ns/{}/{}/{}", ns.get(), env.get(), key.get()) exact=true>{key}</A> " / "
            <strong aria-current="page">"compare"</strong>
        </nav>
        <h1>"Compare v" {from} " → v" {to}</h1>
        // The pickers read a resource: render them inside a Transition so the
        // server's HTML and the hydrating browser agree.
        <Transition>
            <div class="inline-form card">
                <VersionPicker label="From (left)" name="from" current=from versions
                    on_pick=move |v| go_from(v, to.get_untracked(), hide_whitespace.get_untracked()) />
                <VersionPicker label="To (right)" name="to" current=to versions
                    on_pick=move |v| go_to(from.get_untracked(), v, hide_whitespace.get_untracked()) />
            </div>
        </Transition>
        <DiffOptions unified hide_whitespace
            on_whitespace=move |hide| go_whitespace(from.get_untracked(), to.get_untracked(), hide) />
        <Transition fallback=|| view! { <p class="loading">"Computing the diff…"</p> }>
            {move || Suspend::new(async move {
                match diff.await {
                    Ok(diff) => view! { <DiffView diff unified /> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The version named by `name` in the address (`?from=3`), v1 when missing.
fn version_in_query(query: Memo<ParamsMap>, name: &'static str) -> Memo<i64> {
    Memo::new(move |_| {
        query
            .read()
            .get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1)
    })
}

/// A version picker: the newest versions, and the one compared whatever its age.
#[component]
fn VersionPicker(
    label: &'static str,
    name: &'static str,
    /// The version compared now.
    current: Memo<i64>,
    versions: Resource<Result<VersionPage, crate::Error>>,
    /// Goes to the diff with the picked version.
    #[prop(into)]
    on_pick: Callback<i64>,
) -> impl IntoView {
    view! {
        <label>
            {label}
            <select name=name on:change=move |ev| {
                if let Ok(v) = event_target_value(&ev).parse::<i64>() { on_pick.run(v) }
            }>
                {move || {
                    let listed = versions.get().and_then(|r| r.ok()).map(|p| p.versions).unwrap_or_default();
                    let mut options: Vec<(i64, String)> = listed.into_iter().map(|v| (v.version, format!("v{} — {}", v.version, v.message))).collect();
                    let chosen = current.get();
                    if !options.iter().any(|(n, _)| *n == chosen) {
                        options.push((chosen, format!("v{chosen}")));
                    }
                    options.into_iter().map(|(n, text)| {
                        view! { <option value=n selected=move || current.get() == n>{text}</option> }
                    }).collect_view()
                }}
            </select>
        </label>
    }
}

/// Split or unified (remembered in this browser), and whether whitespace changes show.
#[component]
fn DiffOptions(
    unified: RwSignal<bool>,
    hide_whitespace: Memo<bool>,
    /// Goes to the diff with whitespace changes hidden (true) or shown.
    #[prop(into)]
    on_whitespace: Callback<bool>,
) -> impl IntoView {
    let choose = move |one_column: bool| {
        unified.set(one_column);
        store_layout(if one_column { "unified" } else { "split" });
    };
    view! {
        <div class="diff-options" role="group" aria-label="Diff options">
            <span class="segmented" role="group" aria-label="Layout">
                <button type="button" class=move || if unified.get() { "btn small" } else { "btn small selected" }
                    aria-pressed=move || (!unified.get()).to_string() on:click=move |_| choose(false)>"Split"</button>
                <button type="button" class=move || if unified.get() { "btn small selected" } else { "btn small" }
                    aria-pressed=move || unified.get().to_string() on:click=move |_| choose(true)>"Unified"</button>
            </span>
            <label class="check">
                <input type="checkbox" name="hide-whitespace" prop:checked=move || hide_whitespace.get()
                    on:change=move |ev| on_whitespace.run(event_target_checked(&ev)) />
                "Hide whitespace"
            </label>
        </div>
    }
}

#[cfg(feature = "hydrate")]
fn local_storage() -> Option<js_sys::Object> {
    // web-sys's `Storage` binding needs a crate feature (and a rebuild of
    // everything on web-sys); the two calls here go through JavaScript directly.
    use wasm_bindgen::JsCast;
    js_sys::Reflect::get(&js_sys::global(), &"localStorage".into())
        .ok()?
        .dyn_into()
        .ok()
}

/// The layout this browser chose last; `None` on the server, before any choice,
/// or where storage is refused.
fn stored_layout() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let storage = local_storage()?;
        let get: js_sys::Function = js_sys::Reflect::get(&storage, &"getItem".into())
            .ok()?
            .dyn_into()
            .ok()?;
        get.call1(&storage, &LAYOUT_KEY.into()).ok()?.as_string()
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

fn store_layout(layout: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let set = local_storage().and_then(|storage| {
            let f: js_sys::Function = js_sys::Reflect::get(&storage, &"setItem".into())
                .ok()?
                .dyn_into()
                .ok()?;
            Some((storage, f))
        });
        if let Some((storage, set)) = set {
            // Storage may be full or refused (private mode): the choice then lasts this visit.
            let _ = set.call2(&storage, &LAYOUT_KEY.into(), &layout.into());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (layout, LAYOUT_KEY);
}
