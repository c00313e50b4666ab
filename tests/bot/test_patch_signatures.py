"""The Rasa functions the patches replace or override still have the signatures the patches were written for.

An upgrade of Rasa (or jsonschema) that changes one fails here, naming the
patch to read again (bot/patches/<name>.py). Once the patch is adapted (and
PINNED_RASA moved), record the new signature below.
"""

import inspect

import pytest

from bot import patches

# What inspect.signature gave for each target with the pinned Rasa.
RECORDED = {
    "fast_load": {
        "rasa.utils.tensorflow.models:RasaModel.load":
            "(model_file_name: str, model_data_example: rasa.utils.tensorflow.model_data.RasaModelData, predict_data_example: Optional[rasa.utils.tensorflow.model_data.RasaModelData] = None, finetune_mode: bool = False, *args: Any, **kwargs: Any) -> 'RasaModel'",
    },
    "gc_freeze": {},
    "fast_features": {
        "rasa.shared.nlu.training_data.features:Features._combine_sparse_features":
            "(self, additional_features: 'Features') -> 'None'",
    },
    "response_selector_skip": {
        "rasa.nlu.selectors.response_selector:ResponseSelector.process":
            "(self, messages: 'List[Message]') -> 'List[Message]'",
    },
    "nlu_worker": {
        "rasa.core.processor:MessageProcessor.parse_message":
            '(self, message: rasa.core.channels.channel.UserMessage, tracker: Optional[rasa.shared.core.trackers.DialogueStateTracker] = None, only_output_properties: bool = True) -> Dict[str, Any]',
        "rasa.core.processor:MessageProcessor.handle_message":
            '(self, message: rasa.core.channels.channel.UserMessage) -> Optional[List[Dict[str, Any]]]',
    },
    "past_states": {
        "rasa.shared.core.domain:Domain.states_for_tracker_history":
            "(self, tracker: 'DialogueStateTracker', omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False, rule_only_data: Optional[Dict[str, Any]] = None) -> List[Dict[str, MutableMapping[str, Union[str, Tuple[Union[float, str], ...]]]]]",
    },
    "lazy_ted": {
        "rasa.core.policies.ensemble:DefaultPolicyPredictionEnsemble._pick_best_policy":
            "(predictions: 'List[PolicyPrediction]') -> 'PolicyPrediction'",
        "rasa.core.policies.ted_policy:TEDPolicy.predict_action_probabilities":
            "(self, tracker: 'DialogueStateTracker', domain: 'Domain', rule_only_data: 'Optional[Dict[Text, Any]]' = None, precomputations: 'Optional[MessageContainerForCoreFeaturization]' = None, **kwargs: 'Any') -> 'PolicyPrediction'",
    },
    "log_copies": {
        "rasa.core.processor:copy.deepcopy":
            '(x, memo=None, _nil=[])',
        "rasa.core.policies.rule_policy:copy.deepcopy":
            '(x, memo=None, _nil=[])',
        "rasa.core.policies.memoization:copy.deepcopy":
            '(x, memo=None, _nil=[])',
    },
    "fast_json": {
        "rasa.utils.endpoints:EndpointConfig.session":
            '(self) -> aiohttp.client.ClientSession',
    },
    "schema_cache": {
        "jsonschema:validate":
            '(instance, schema, cls=None, *args, **kwargs)',
    },
    "action_response": {
        "rasa.core.actions.action:RemoteAction._validate_action_result":
            '(self, result: Dict[str, Any]) -> bool',
    },
    "action_call_slot": {
        "rasa.utils.endpoints:EndpointConfig.request":
            "(self, method: str = 'post', subpath: Optional[str] = None, content_type: Optional[str] = 'application/json', compress: bool = False, **kwargs: Any) -> Optional[Any]",
    },
    "event_types": {
        "rasa.shared.core.events:Event.resolve_by_type":
            "(type_name: str, default: Optional[Type[ForwardRef('Event')]] = None) -> Optional[Type[ForwardRef('Event')]]",
    },
}

# Rasa's private functions a patch calls without replacing them.
CALLED = {
    "nlu_worker": {
        "rasa.core.processor:MessageProcessor._parse_message_with_graph":
            "(self, message: rasa.core.channels.channel.UserMessage, tracker: rasa.shared.core.trackers.DialogueStateTracker, only_output_properties: bool = True) -> Dict[str, Any]",
        "rasa.core.processor:MessageProcessor._update_full_retrieval_intent":
            "(self, parse_data: Dict[str, Any]) -> None",
        "rasa.core.processor:MessageProcessor._check_for_unseen_features":
            "(self, parse_data: Dict[str, Any]) -> None",
    },
}


def test_every_patch_and_target_has_a_recorded_signature():
    assert {patch.name: set(patch.targets) for patch in patches.PATCHES} == {
        name: set(targets) for name, targets in RECORDED.items()
    }


@pytest.mark.parametrize(
    ("name", "target"), [(patch.name, target) for patch in patches.PATCHES for target in patch.targets]
)
def test_the_patched_function_has_the_recorded_signature(name, target):
    found = str(inspect.signature(patches.original(target)))
    assert found == RECORDED[name][target], (
        f"{target} changed its signature: the patch {name!r} (bot/patches/{name}.py) was written for "
        f"{RECORDED[name][target]}, this Rasa has {found}"
    )


@pytest.mark.parametrize(("name", "target"), [(name, target) for name, calls in CALLED.items() for target in calls])
def test_the_private_functions_a_patch_calls_have_the_recorded_signature(name, target):
    found = str(inspect.signature(patches.resolve(target)))
    assert found == CALLED[name][target], (
        f"{target} changed its signature: the patch {name!r} (bot/patches/{name}.py) calls it as "
        f"{CALLED[name][target]}, this Rasa has {found}"
    )
