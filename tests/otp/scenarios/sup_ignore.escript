#!/usr/bin/env escript
%% S7: ignore keeps the spec with no process (not a temporary one); restart_child of it
%% ignores again.
-module(sup_ignore).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Specs = [spec(a), #{id => i, start => {?MODULE, start_ignore, [i]}},
             #{id => j, start => {?MODULE, start_ignore, [j]}, restart => temporary}],
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE, {#{}, Specs}),
    which(sup),
    show("restart_child i", supervisor:restart_child(sup, i)),
    show("start_child k", supervisor:start_child(sup, #{id => k, start => {?MODULE, start_ignore, [k]}})),
    show("start_child l", supervisor:start_child(sup, #{id => l, start => {?MODULE, start_ignore, [l]}, restart => temporary})),
    which(sup),
    count(sup),
    stop(sup).
