#!/usr/bin/env escript
%% P11: terminate runs on the parent's shutdown only when the server traps exits (and not
%% for kill); it runs on stop and on a crash; EXIT from others goes to handle_info.
-mode(compile).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-include("trace.hrl").

init({Name, Trap}) -> process_flag(trap_exit, Trap), {ok, Name}.

handle_call({link, P}, _From, S) -> link(P), {reply, ok, S};
handle_call(sync, _From, S) -> {reply, ok, S}.

handle_cast(crash, _) -> error(boom).

handle_info(Msg, Name) -> trace([Name, info, Msg]), {noreply, Name}.

terminate(Reason, Name) -> trace([Name, terminate, Reason]).

shutdown(Name, Trap, Reason) ->
    {ok, P} = gen_server:start_link(?MODULE, {Name, Trap}, []),
    exit(P, Reason),
    receive {'EXIT', P, Why} -> trace([Name, exit, Why]) end.

scenario() ->
    process_flag(trap_exit, true),
    shutdown(plain, false, shutdown),
    shutdown(trapping, true, shutdown),
    shutdown(trapping_kill, true, kill),
    shutdown(trapping_custom, true, {shutdown, x}),
    {ok, A} = gen_server:start_link(?MODULE, {stopped, false}, []),
    trace([stop, gen_server:stop(A)]),
    trace([stopped, exit, receive {'EXIT', A, RA} -> RA end]),
    {ok, B} = gen_server:start_link(?MODULE, {stopped_custom, false}, []),
    trace([stop, gen_server:stop(B, custom, infinity)]),
    trace([stopped_custom, exit, receive {'EXIT', B, RB} -> RB end]),
    {ok, C} = gen_server:start_link(?MODULE, {crashing, false}, []),
    gen_server:cast(C, crash),
    trace([crashing, exit, receive {'EXIT', C, RC} -> RC end]),
    {ok, D} = gen_server:start_link(?MODULE, {other, true}, []),
    O = spawn(fun() -> receive stop -> exit(bye) end end),
    ok = gen_server:call(D, {link, O}),
    O ! stop,
    monitor(process, O),
    wait_down(O),
    ok = gen_server:call(D, sync),
    exit(D, shutdown),
    trace([other, exit, receive {'EXIT', D, RD} -> RD end]),
    trace([left, flush()]).
