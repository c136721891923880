#!/usr/bin/env escript
%% P9: starting under a taken name fails with already_started and the holder; a failed or
%% ignored start leaves the name free; the name is free again once the server stopped.
-mode(compile).
-export([init/1, handle_call/3, handle_cast/2]).
-include("trace.hrl").

init(ignore) -> ignore;
init(fail) -> {stop, bad};
init(crash) -> error(boom);
init(X) -> {ok, X}.

handle_call(_, _, S) -> {reply, S, S}.

handle_cast(_, S) -> {noreply, S}.

scenario() ->
    {ok, S} = gen_server:start({local, gs}, ?MODULE, ok, []),
    {error, {already_started, H}} = gen_server:start({local, gs}, ?MODULE, ok, []),
    trace([already_started, H =:= S]),
    trace([ignore, gen_server:start({local, other}, ?MODULE, ignore, []), whereis(other)]),
    trace([fail, gen_server:start({local, other}, ?MODULE, fail, []), whereis(other)]),
    trace([crash, gen_server:start({local, other}, ?MODULE, crash, []), whereis(other)]),
    trace([stop, gen_server:stop(gs), whereis(gs)]),
    {ok, S2} = gen_server:start({local, gs}, ?MODULE, again, []),
    trace([restarted, whereis(gs) =:= S2, gen_server:call(gs, get)]),
    trace([stop, gen_server:stop(S2)]),
    trace([left, flush()]).
