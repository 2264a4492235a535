use crate::api::configs::{diff_versions, list_versions};
use crate::app::components::DiffView;
use crate::model::ConfigPath;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

/// Side-by-side comparison of any two versions, with pickers for both.
#[component]
pub fn DiffPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let ns = Memo::new(move |_| params.read().get("ns").unwrap_or_default());
    let env = Memo::new(move |_| params.read().get("env").unwrap_or_default());
    let key = Memo::new(move |_| params.read().get("key").unwrap_or_default());
    let from = Memo::new(move |_| {
        query
            .read()
            .get("from")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1)
    });
    let to = Memo::new(move |_| {
        query
            .read()
            .get("to")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1)
    });
    let versions = Resource::new(
        move || (ns.get(), env.get(), key.get()),
        |(ns, env, key)| list_versions(ConfigPath::new(ns, env, key)),
    );
    let diff = Resource::new(
        move || (ns.get(), env.get(), key.get(), from.get(), to.get()),
        |(ns, env, key, from, to)| diff_versions(ConfigPath::new(ns, env, key), from, to),
    );
    let navigate = use_navigate();
    let go = move |from: i64, to: i64| {
        navigate(
            &format!(
                "/ns/{}/{}/{}/diff?from={from}&to={to}",
                ns.get_untracked(),
                env.get_untracked(),
                key.get_untracked()
            ),
            Default::default(),
        )
    };
    let go_from = go.clone();
    let picker = move |label: &'static str,
                       name: &'static str,
                       current: Memo<i64>,
                       on_pick: Box<dyn Fn(i64) + Send + Sync>| {
        let on_pick = std::sync::Arc::new(on_pick);
        view! {
            <label>
                {label}
                <select name=name on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<i64>() { on_pick(v) }
                }>
                    {move || versions.get().and_then(|r| r.ok()).unwrap_or_default().into_iter().map(|v| {
                        let n = v.version;
                        view! { <option value=n selected=move || current.get() == n>{format!("v{n} — {}", v.message)}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
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
                {picker("From (left)", "from", from, Box::new(move |v| go_from(v, to.get_untracked())))}
                {picker("To (right)", "to", to, Box::new(move |v| go(from.get_untracked(), v)))}
            </div>
        </Transition>
        <Transition fallback=|| view! { <p class="loading">"Computing the diff…"</p> }>
            {move || Suspend::new(async move {
                match diff.await {
                    Ok(diff) => view! { <DiffView diff /> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
