%% Shared by the supervisor scenarios (tests/otp/scenarios/sup_*.escript, before trace.hrl):
%% workers, the trace format (pids as registered names), and a logger handler that prints
%% supervisor reports as trace lines. The Python halves (tests/otp/scenarios/supervisors.py)
%% print the same lines.
-mode(compile).
-behaviour(supervisor).
-export([init/1, log/2, start_worker/2, start_dyn/2, start_sup/3, start_failing/2,
         start_flaky/3, start_ignore/1, start_server/2, handle_call/3, handle_cast/2,
         terminate/2]).

%% The module is the supervisors' callback module and a gen_server's ({server, ...}).
init({server, Name, Trap}) -> process_flag(trap_exit, Trap), {ok, Name};
init({Flags, Specs}) -> {ok, {Flags, Specs}}.

handle_call(_Request, _From, Name) -> {reply, ok, Name}.
handle_cast(_Message, Name) -> {noreply, Name}.
terminate(Reason, Name) -> t("terminate ~s ~s", [Name, sfmt(Reason)]).

start_server(Name, Trap) ->
    t("start ~s", [Name]),
    gen_server:start_link({local, Name}, ?MODULE, {server, Name, Trap}, []).

%% -- trace ---------------------------------------------------------------------------------
t(Format, Args) -> io:format("T " ++ Format ++ "~n", Args).

setup() ->
    process_flag(trap_exit, true),
    persistent_term:put(flaky, 0),
    logger:set_primary_config(level, all),
    logger:remove_handler(default),
    logger:add_handler(trace, ?MODULE, #{}).

log(#{msg := {report, #{label := {supervisor, progress}, report := R}}}, _) ->
    t("report ~s progress ~s", [sfmt(sname(R)), sfmt(child_id(started, R))]);
log(#{msg := {report, #{label := {supervisor, Err}, report := R}}}, _) ->
    {reason, Reason} = lists:keyfind(reason, 1, R),
    t("report ~s ~s ~s ~s", [sfmt(sname(R)), Err, sfmt(child_id(offender, R)), sfmt(Reason)]);
log(_, _) -> ok.

sname(R) -> case lists:keyfind(supervisor, 1, R) of
                {supervisor, {local, N}} -> N;
                {supervisor, P} -> P
            end.
child_id(Key, R) ->
    {Key, C} = lists:keyfind(Key, 1, R),
    case proplists:get_value(id, C) of
        undefined -> dynamic;   %% simple_one_for_one children have no id
        Id -> Id
    end.

sfmt(A) when is_atom(A) -> atom_to_list(A);
sfmt(I) when is_integer(I) -> integer_to_list(I);
sfmt(P) when is_pid(P) -> case process_info(P, registered_name) of
                             {registered_name, N} -> atom_to_list(N);
                             _ -> "pid"
                         end;
sfmt({shutdown, T}) -> "{shutdown," ++ sfmt(T) ++ "}";
sfmt(L) when is_list(L) -> "[" ++ string:join([sfmt(X) || X <- L], ",") ++ "]";
sfmt(T) when is_tuple(T) -> "{" ++ string:join([sfmt(X) || X <- tuple_to_list(T)], ",") ++ "}".

%% A call's result, as the Python twin prints its return value or exception.
result(ok) -> "ok";
result({ok, undefined}) -> "ok undefined";
result({ok, P}) when is_pid(P) -> "ok " ++ sfmt(P);
result({error, {already_started, P}}) -> "error already_started " ++ sfmt(P);
result({error, {shutdown, {failed_to_start_child, Id, R}}}) ->
    "error failed_to_start_child " ++ sfmt(Id) ++ " " ++ sfmt(R);
result({error, {R, Child}}) when element(1, Child) =:= child -> "error " ++ sfmt(R);
result({error, R}) -> "error " ++ sfmt(R).

show(What, Result) -> t("~s -> ~s", [What, result(Result)]).

which(Sup) ->
    Rows = [sfmt(Id) ++ ":" ++ sfmt(Child) || {Id, Child, _Type, _} <- supervisor:which_children(Sup)],
    t("which_children -> ~s", [string:join(Rows, " ")]).

count(Sup) ->
    C = supervisor:count_children(Sup),
    t("count_children -> specs=~p active=~p supervisors=~p workers=~p",
      [proplists:get_value(K, C) || K <- [specs, active, supervisors, workers]]).

%% The dynamic supervisor: OTP counts one spec, Elixir's DynamicSupervisor one per child.
count_dyn(Sup) ->
    C = supervisor:count_children(Sup),
    t("count_children -> active=~p supervisors=~p workers=~p",
      [proplists:get_value(K, C) || K <- [active, supervisors, workers]]).

%% -- children ------------------------------------------------------------------------------
%% A worker registered as Name. Kinds: trap (prints "stop Name Reason" on its parent's exit
%% signal, then exits with it), plain (does not trap), stubborn (traps, prints "ignore Name
%% Reason" and keeps running), slow (traps, prints "stop", waits 50 ms, then exits).
start_worker(Name, Kind) ->
    t("start ~s", [Name]),
    Parent = self(),
    Pid = spawn_link(fun() -> worker_init(Parent, Name, Kind) end),
    register(Name, Pid),
    {ok, Pid}.

%% simple_one_for_one: the extra argument (the name) comes last.
start_dyn(Kind, Name) -> start_worker(Name, Kind).

worker_init(_Parent, Name, Kind) ->
    Kind =/= plain andalso process_flag(trap_exit, true),
    worker(Name, Kind).

worker(Name, Kind) ->
    receive
        {'EXIT', _, R} when Kind =:= stubborn -> t("ignore ~s ~s", [Name, sfmt(R)]), worker(Name, Kind);
        {'EXIT', _, R} when Kind =:= slow -> t("stop ~s ~s", [Name, sfmt(R)]), timer:sleep(50), exit(R);
        {'EXIT', _, R} -> t("stop ~s ~s", [Name, sfmt(R)]), exit(R);
        {crash, R} -> exit(R)
    end.

start_sup(Name, Flags, Specs) ->
    t("start ~s", [Name]),
    supervisor:start_link({local, Name}, ?MODULE, {Flags, Specs}).

start_failing(Name, Reason) ->
    t("start ~s", [Name]),
    {error, Reason}.

start_ignore(Name) ->
    t("start ~s", [Name]),
    ignore.

%% Starts the first Ok times, fails after that (a counter in persistent_term).
start_flaky(Name, Kind, Ok) ->
    N = persistent_term:get({flaky, Name}, 0),
    persistent_term:put({flaky, Name}, N + 1),
    case N < Ok of
        true -> start_worker(Name, Kind);
        false -> start_failing(Name, nope)
    end.

%% -- the test process ----------------------------------------------------------------------
spec(Id) -> spec(Id, #{}).
spec(Id, Opts) ->
    Kind = maps:get(kind, Opts, trap),
    maps:merge(#{id => Id, start => {?MODULE, start_worker, [Id, Kind]}},
               maps:remove(kind, Opts)).

%% Make Name end with Reason and wait until its supervisor Sup has handled the EXIT.
crash(Name, Reason, Sup) ->
    Pid = whereis(Name),
    M = monitor(process, Pid),
    Pid ! {crash, Reason},
    receive {'DOWN', M, process, Pid, _} -> ok end,
    sync(Sup).

sync(Sup) -> _ = (catch supervisor:count_children(Sup)), ok.

%% Stop the supervisor as its parent does (exit shutdown) and print how it ended.
stop(Sup) ->
    exit(whereis(Sup), shutdown),
    await_exit(Sup).

await_exit(Sup) ->
    receive {'EXIT', _, R} -> t("exit ~s ~s", [Sup, sfmt(R)]) end.
