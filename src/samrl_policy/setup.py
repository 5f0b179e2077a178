"""ament_python package samrl_policy: builds with colcon on ROS 2 and with `pip install -e` without it."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'samrl_policy'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    # The shipped Learn@Sim networks, their cards and the actor stage's config install with the code.
    package_data={PACKAGE: ['py.typed', 'trained/*/*.pt', 'trained/*/*.json', 'trained/*/actor/config.json']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/launch', glob('launch/*.py')),
        ('share/' + PACKAGE + '/config', glob('config/*.yaml')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='samrl developers',
    maintainer_email='dev@samrl.invalid',
    description=open('package.xml').read().split('<description>')[1].split('</description>')[0],
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'policy_node = samrl_policy.policy_node:main',
        ],
    },
)
